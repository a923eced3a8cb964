"""The local stack: install, start, stop and inspect the `cityops` cluster and broker."""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cityops.errors import StackError
from infra.broker import accounts
from infra.broker.process import Broker, BrokerTls
from infra.local import postgres
from infra.tls.ca import LocalCA

BROKER_HOST = "127.0.0.1"
BROKER_PORT = 1884
# MQTT over TLS with per-gateway client certificates of the local CA (docs/operations.md)
BROKER_TLS_PORT = 8884
# Mosquitto, started as root, switches to the Debian package's own unprivileged user
BROKER_USER = "mosquitto"
INSTALL_SCRIPT = Path(__file__).with_name("install.sh")
TSDB_CONTROL = Path(f"/usr/share/postgresql/{postgres.PG_MAJOR}/extension/timescaledb.control")
SERVICES = {"svc-ingest": "CITYOPS_INGEST_MQTT", "svc-api": "CITYOPS_API_MQTT"}


@dataclass(frozen=True)
class Part:
    name: str
    ok: bool
    detail: str


def state_dir_from_env() -> Path:
    return Path(os.environ.get("CITYOPS_STATE_DIR", "var"))


def broker_for(state_dir: Path) -> Broker:
    return Broker(state_dir / "broker", BROKER_PORT, BROKER_HOST, run_as=BROKER_USER)


def ensure_tls(state_dir: Path) -> BrokerTls:
    """The local CA under <state_dir>/tls (made once) and the broker's TLS listener."""
    ca = LocalCA(state_dir / "tls").ensure()
    server = ca.server([BROKER_HOST, "localhost"])
    return BrokerTls(BROKER_TLS_PORT, ca.cert_path, server.cert, server.key, client_certs=True)


def install() -> None:
    if os.geteuid() != 0:
        raise StackError("the local stack installs Debian packages: run it as root")
    done = subprocess.run(["bash", str(INSTALL_SCRIPT)], check=False)
    if done.returncode != 0:
        raise StackError(f"{INSTALL_SCRIPT} failed with exit status {done.returncode}")


def read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def _local_env(existing: dict[str, str]) -> dict[str, str]:
    """Our keys, keeping every value already there; unknown keys are carried over untouched."""
    db_password = urlsplit(existing.get("CITYOPS_DATABASE_URL", "")).password
    db_password = db_password or secrets.token_urlsafe(24)
    dsn = f"postgresql://{postgres.ROLE}:{db_password}@{postgres.HOST}:{postgres.PORT}"
    ours = {
        "CITYOPS_DATABASE_URL": f"{dsn}/{postgres.DATABASE}",
        "CITYOPS_DATABASE_ADMIN_URL": f"{dsn}/postgres",
        "CITYOPS_MQTT_URL": f"mqtt://{BROKER_HOST}:{BROKER_PORT}",
    }
    for user, prefix in SERVICES.items():
        ours[f"{prefix}_USERNAME"] = user
        ours[f"{prefix}_PASSWORD"] = accounts.new_password()
    ours["CITYOPS_JWT_SECRET"] = secrets.token_urlsafe(48)
    ours["CITYOPS_SECRET_KEY"] = secrets.token_urlsafe(48)
    # `cityops backup` encrypts with it: keep a copy away from this machine (docs/operations.md)
    ours["CITYOPS_BACKUP_KEY"] = secrets.token_urlsafe(48)
    return {**ours, **existing}


def write_env(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    accounts.write_private(path, "".join(f"{k}={v}\n" for k, v in values.items()))


def up(state_dir: Path) -> list[Part]:
    install()
    env_path = state_dir / "local.env"
    env = _local_env(read_env(env_path))
    # written first, so a failure further on cannot lose freshly generated passwords
    write_env(env_path, env)
    server = LocalCA(state_dir / "tls").ensure().server([postgres.HOST, "localhost"])
    postgres.ensure_cluster(server.cert, server.key)
    db_password = urlsplit(env["CITYOPS_DATABASE_URL"]).password
    if not db_password:
        raise StackError(f"CITYOPS_DATABASE_URL in {env_path} has no password")
    postgres.ensure_database(db_password)
    broker = Broker(state_dir / "broker", BROKER_PORT, BROKER_HOST, run_as=BROKER_USER,
                    tls=ensure_tls(state_dir))
    changed = False
    for prefix in SERVICES.values():
        user, password = env[f"{prefix}_USERNAME"], env[f"{prefix}_PASSWORD"]
        changed |= accounts.ensure_service_account(broker.state_dir, user, password)
    broker.write_config()
    if broker.is_running():
        if changed:
            broker.reload()
    else:
        broker.start()
    return status(state_dir)


def down(state_dir: Path) -> None:
    broker_for(state_dir).stop()
    postgres.stop_cluster()


def _postgres_part() -> Part:
    try:
        cluster = postgres.cluster_state()
    except StackError as err:
        return Part("postgres", False, err.detail)
    return Part("postgres", cluster.running, cluster.describe())


def _broker_part(state_dir: Path) -> Part:
    try:
        pid = broker_for(state_dir).pid()
    except StackError as err:
        return Part("broker", False, err.detail)
    if pid is None:
        return Part("broker", False, "stopped")
    return Part("broker", True, f"running on {BROKER_HOST}:{BROKER_PORT} (pid {pid})")


def status(state_dir: Path) -> list[Part]:
    env_path = state_dir / "local.env"
    return [
        Part("timescaledb", TSDB_CONTROL.exists(), "built" if TSDB_CONTROL.exists() else "missing"),
        _postgres_part(),
        _broker_part(state_dir),
        Part("settings", env_path.exists(), str(env_path) if env_path.exists() else "missing"),
    ]


def add_gateway(state_dir: Path, gateway_id: str, certificate: bool = False) -> str:
    """New broker credentials for a gateway; a running broker picks them up at once. With
    `certificate`, also a client certificate of the local CA (for the TLS listener)."""
    broker = broker_for(state_dir)
    password = accounts.add_gateway(broker.state_dir, gateway_id)
    _apply(broker)
    if certificate:
        issued = LocalCA(state_dir / "tls").ensure().client(gateway_id)
        return f"{password}\ncert_file: {issued.cert.resolve()}\nkey_file: {issued.key.resolve()}"
    return password


def revoke_gateway(state_dir: Path, gateway_id: str) -> None:
    """Mosquitto drops the gateway's open connection when it reloads (checked in the tests)."""
    broker = broker_for(state_dir)
    accounts.revoke_gateway(broker.state_dir, gateway_id)
    _apply(broker)


def _apply(broker: Broker) -> None:
    broker.write_config()
    if broker.is_running():
        broker.reload()
