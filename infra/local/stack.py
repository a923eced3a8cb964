"""The local stack: install, start, stop and inspect the `cityops` cluster and broker."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cityops.errors import StackError
from infra.broker import accounts
from infra.broker.certificates import revoke_certificates
from infra.broker.process import Broker, BrokerTls
from infra.local import postgres
from infra.local.api_tls import api_tls_env
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
# the platform's services talk to the broker over TLS, each with its own certificate; gateways
# keep being handed the password listener (docs/operations.md, "Encryption in transit")
SERVICES_MQTT_URL = f"mqtts://{BROKER_HOST}:{BROKER_TLS_PORT}"
GATEWAYS_MQTT_URL = f"mqtt://{BROKER_HOST}:{BROKER_PORT}"


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
    ca.write_crl()  # signed afresh at each `stack up`, keeping what was revoked
    return BrokerTls(BROKER_TLS_PORT, ca.cert_path, server.cert, server.key, client_certs=True,
                     crlfile=ca.crl_path.absolute(), issuer=ca.folder.absolute())


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


def _services_tls_env(existing: dict[str, str], state_dir: Path) -> dict[str, str]:
    """The services on the TLS listener, each with its certificate of the local CA, when the
    services' URL is the stack's: none yet, already ours, or the plain one every `stack up`
    wrote before TLS (recognised by having no CITYOPS_MQTT_CA_FILE beside it), which is
    upgraded. Any other URL is an operator's choice and stays as it is, with no keys added;
    a key already there (a county's own certificate) is kept."""
    url = existing.get("CITYOPS_MQTT_URL", SERVICES_MQTT_URL)
    legacy = url == GATEWAYS_MQTT_URL and "CITYOPS_MQTT_CA_FILE" not in existing
    if url != SERVICES_MQTT_URL and not legacy:
        return {}
    ca = LocalCA(state_dir / "tls").ensure()
    ours = {"CITYOPS_MQTT_CA_FILE": str(ca.cert_path.absolute()),
            # services' URL and gateways' URL differ now: registering a gateway hands it this
            "CITYOPS_GATEWAY_MQTT_URL": GATEWAYS_MQTT_URL}
    for user, prefix in SERVICES.items():
        if f"{prefix}_CERT_FILE" in existing or f"{prefix}_KEY_FILE" in existing:
            continue
        issued = ca.ensure_client(user)
        ours[f"{prefix}_CERT_FILE"] = str(issued.cert.absolute())
        ours[f"{prefix}_KEY_FILE"] = str(issued.key.absolute())
    return {**ours, **existing, "CITYOPS_MQTT_URL": SERVICES_MQTT_URL}


def _local_env(existing: dict[str, str], state_dir: Path | None = None) -> dict[str, str]:
    """Our keys, keeping every value already there; unknown keys are carried over untouched.
    With `state_dir`, the services' MQTT over TLS too (_services_tls_env), and the API's
    HTTPS (api_tls_env)."""
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
    merged = {**ours, **existing}
    if state_dir is not None:
        merged |= _services_tls_env(existing, state_dir)
        merged |= api_tls_env(existing, state_dir)  # the API over HTTPS (infra/local/api_tls.py)
    return merged


def write_env(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    accounts.write_private(path, "".join(f"{k}={v}\n" for k, v in values.items()))


def up(state_dir: Path) -> list[Part]:
    install()
    env_path = state_dir / "local.env"
    env = _local_env(read_env(env_path), state_dir)
    # written first, so a failure further on cannot lose freshly generated passwords
    write_env(env_path, env)
    server = LocalCA(state_dir / "tls").ensure().server([postgres.HOST, "localhost"])
    postgres.ensure_cluster(server.cert, server.key)
    db_password = urlsplit(env["CITYOPS_DATABASE_URL"]).password
    if not db_password:
        raise StackError(f"CITYOPS_DATABASE_URL in {env_path} has no password")
    postgres.ensure_database(db_password)
    ensure_broker(state_dir, env)
    return status(state_dir)


def ensure_broker(state_dir: Path, env: dict[str, str]) -> None:
    """The broker with its service accounts, TLS listener and CRL, started or brought up to
    date. Mosquitto opens listeners only at start, and a `crlfile` added to a running
    listener is not taken by SIGHUP (only one there at start is re-read; checked here): one
    running without them (a stack made before) is restarted once, which its clients ride
    out by reconnecting."""
    broker = Broker(state_dir / "broker", BROKER_PORT, BROKER_HOST, run_as=BROKER_USER,
                    tls=ensure_tls(state_dir))
    for prefix in SERVICES.values():
        user, password = env[f"{prefix}_USERNAME"], env[f"{prefix}_PASSWORD"]
        accounts.ensure_service_account(broker.state_dir, user, password)
    started_with = broker.conf_path.read_text() if broker.conf_path.exists() else ""
    broker.write_config()
    if broker.is_running() and ("\ncrlfile " not in started_with
                                or not _accepts_tls(BROKER_HOST, BROKER_TLS_PORT)):
        broker.stop()
    if broker.is_running():
        broker.reload()  # the accounts, ACL and CRL (a fresh signature) re-read
    else:
        broker.start()


def _accepts_tls(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


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
    if certificate:  # the agent's `broker:` block for the TLS listener, but the password
        ca = LocalCA(state_dir / "tls").ensure()
        issued = ca.client(gateway_id)
        return (f"{password}\nurl: {SERVICES_MQTT_URL}\nca_file: {ca.cert_path.resolve()}\n"
                f"cert_file: {issued.cert.resolve()}\nkey_file: {issued.key.resolve()}")
    return password


def revoke_gateway(state_dir: Path, gateway_id: str) -> None:
    """Mosquitto drops the gateway's open connection when it reloads (checked in the tests)."""
    broker = broker_for(state_dir)
    accounts.revoke_gateway(broker.state_dir, gateway_id)
    revoke_certificates(broker, gateway_id)
    _apply(broker)


def _apply(broker: Broker) -> None:
    broker.write_config()
    if broker.is_running():
        broker.reload()
