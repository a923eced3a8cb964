"""`cityops stack up --ha`: the local stack with a database that fails over, instead of the
single `cityops` cluster: etcd and two Patroni members on documented loopback ports, state
under <state_dir>/ha; the services' URLs in local.env name both members."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from cityops.errors import StackError
from infra.broker import accounts
from infra.ha.cluster import HaCluster, Layout, Member
from infra.ha.database import ensure_database
from infra.local import postgres, stack

# beside the single cluster's 5433 and the broker's 1884; clear of the OpenStack lab's 2xxxx
ETCD_CLIENT, ETCD_PEER = 2479, 2480
MEMBERS = [Member("pg0", 5441, 8441), Member("pg1", 5442, 8442)]
SECRETS = ("CITYOPS_HA_SUPERUSER_PASSWORD", "CITYOPS_HA_REPLICATION_PASSWORD")


def cluster_for(state_dir: Path) -> HaCluster:
    root = (state_dir / "ha").resolve()
    path = root / "secrets.env"
    values = stack.read_env(path)
    if not all(values.get(k) for k in SECRETS):
        values = {k: secrets.token_urlsafe(24) for k in SECRETS}
        root.mkdir(parents=True, exist_ok=True)
        accounts.write_private(path, "".join(f"{k}={v}\n" for k, v in values.items()))
    tuned = {k: v for k, v in postgres.SETTINGS.items()
             if k in ("work_mem", "maintenance_work_mem", "max_wal_size", "checkpoint_timeout",
                      "wal_compression", "bgwriter_delay", "bgwriter_lru_maxpages")}
    # two members share one machine here: half the single cluster's memory each
    tuned |= {"shared_buffers": "2GB", "effective_cache_size": "8GB"}
    layout = Layout(root, ETCD_CLIENT, ETCD_PEER, MEMBERS, parameters=tuned, tls=True)
    return HaCluster(layout, *(values[k] for k in SECRETS))


def up_ha(state_dir: Path) -> list[stack.Part]:
    stack.install()
    env_path = state_dir / "local.env"
    env = stack._local_env(stack.read_env(env_path), state_dir)
    password = urlsplit(env["CITYOPS_DATABASE_URL"]).password
    if not password:
        raise StackError(f"CITYOPS_DATABASE_URL in {env_path} has no password")
    cluster = cluster_for(state_dir)
    cluster.start()
    cluster.wait_leader(120)
    url = ensure_database(cluster, postgres.ROLE, password, postgres.DATABASE)
    env["CITYOPS_DATABASE_URL"] = url
    env["CITYOPS_DATABASE_ADMIN_URL"] = cluster.url(postgres.ROLE, password, "postgres")
    env["CITYOPS_DATABASE_READ_URL"] = cluster.url(postgres.ROLE, password, postgres.DATABASE,
                                                   "prefer-standby")
    stack.write_env(env_path, env)
    stack.ensure_broker(state_dir, env)  # the same broker as `stack up`'s, TLS listener included
    cluster.wait_synchronous(120)
    return status_ha(state_dir)


def status_ha(state_dir: Path) -> list[stack.Part]:
    if not (state_dir / "ha").exists():
        return []
    try:
        members = cluster_for(state_dir).members()
    except StackError as err:
        return [stack.Part("patroni", False, err.detail)]
    return [stack.Part(m["name"], m["state"] in ("running", "streaming"),
                       f"{m['role']} {m['state']} on {m['host']}:{m['port']}") for m in members]


def down_ha(state_dir: Path) -> None:
    if (state_dir / "ha").exists():
        cluster_for(state_dir).stop()
