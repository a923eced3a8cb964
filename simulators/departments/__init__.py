"""Department systems to sync from (数据汇聚): each a real server on a loopback port."""
