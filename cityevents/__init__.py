"""City events (城市事件): the report-to-closure workflow, its clocks and its evaluation."""
