"""The data dashboards (数据展示体系), computed from the platform's own tables."""
