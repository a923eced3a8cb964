"""The data foundation (数字底座): 数据汇聚, pulling departments' systems into the raw layer.
Imports nothing from api/; the API's routes call into this package."""
