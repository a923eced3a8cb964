"""The data-resource catalogue (政务信息资源目录), its portal, grants and unstructured data."""
