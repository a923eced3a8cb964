"""数据治理: the governed-dataset register (every layer's tables as datasets), data elements
and code tables, the layer models (raw → standard → topic) and their lineage."""

from datafoundation.governance.datasets import Field, register_dataset, register_raw

__all__ = ["Field", "register_dataset", "register_raw"]
