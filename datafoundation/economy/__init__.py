"""Industrial-economy indicators (规上工业): import, demo generator and analysis."""
