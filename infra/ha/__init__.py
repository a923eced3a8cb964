"""A PostgreSQL that fails over: Patroni members coordinated through etcd (docs/operations.md)."""
