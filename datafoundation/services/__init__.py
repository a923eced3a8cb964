"""数据服务: granted consumers read governed datasets, masked by sensitivity and grant; the
service registry (hub) that counts every data API's use."""
