"""数据质量 (issue #15): rules per dataset as YAML, compiled to one scan, run after each load
and on demand; results with masked samples, quarantine of rows failing a hard rule, scores on
the GB/T 36344 dimensions trended daily, and 校核纠错 tasks to the providing department."""

from datafoundation.quality.load import load_file, load_rules
from datafoundation.quality.rules import DIMENSIONS, parse
from datafoundation.quality.run import after_load, run_dataset, run_on

__all__ = ["DIMENSIONS", "after_load", "load_file", "load_rules", "parse", "run_dataset", "run_on"]
