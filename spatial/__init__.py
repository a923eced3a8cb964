"""The map (一张图, issue 16): coordinate systems, imports of areas and points, spatial
queries and vector tiles over PostGIS. Imports nothing from api/ (docs/map.md)."""
