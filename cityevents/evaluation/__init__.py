"""城市综合管理服务评价 (MOHURD method) and the GB/T 30428.4 rates per town and grid.

The framework (items, weights, which event categories measure an item) is data in the
evaluation_* tables (migration 159); docs/city-operations.md "Evaluation" gives the formulas.
"""
