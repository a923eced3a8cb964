"""Process settings from the environment (prefix CITYOPS_), validated at start."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cityops.errors import ConfigError
from cityops.logging import level_number

DEFAULT_STATE_DIR = Path("var")


class Settings(BaseSettings):
    """Defaults point at the local stack; `var/local.env`, written by `cityops stack up`, adds
    the generated service passwords."""

    model_config = SettingsConfigDict(env_prefix="CITYOPS_", extra="ignore")

    state_dir: Path = DEFAULT_STATE_DIR
    database_url: SecretStr = SecretStr("postgresql://cityops@127.0.0.1:5433/cityops")
    # the API's read-only routes: e.g. the HA cluster's URL with
    # target_session_attrs=prefer-standby (docs/operations.md); unset: database_url
    database_read_url: SecretStr | None = None
    # encrypts `cityops backup` files (infra/backup/); keep a copy away from the machine
    backup_key: SecretStr | None = None
    # folders `cityops backup` takes beside the database; empty: the broker's state folder
    backup_folders: list[Path] = []
    # a role allowed to CREATE DATABASE: tests and `cityops db create` use it
    database_admin_url: SecretStr = SecretStr("postgresql://cityops@127.0.0.1:5433/postgres")
    mqtt_url: str = "mqtt://127.0.0.1:1884"
    # with an mqtts:// url: the CA of the broker's certificate (default: the system's), and the
    # service's own certificate where the listener takes identities from certificates
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    # each service's own certificate (its common name is the account: svc-ingest, svc-api),
    # where the listener takes identities from certificates; unset: the shared pair above
    ingest_mqtt_cert_file: Path | None = None
    ingest_mqtt_key_file: Path | None = None
    api_mqtt_cert_file: Path | None = None
    api_mqtt_key_file: Path | None = None
    ingest_mqtt_username: str = "svc-ingest"
    ingest_mqtt_password: SecretStr = SecretStr("")
    api_mqtt_username: str = "svc-api"
    api_mqtt_password: SecretStr = SecretStr("")
    topic_root: str = "cityops/v1"
    # ingestion
    ingest_group: str = "ingest"
    # names this deployment's shared-subscription groups and internal topics, so deployments
    # sharing a broker never take each other's messages (docs/operations.md); default: derived
    # from the database's name (see `deployment`)
    deployment_id: str = Field("", pattern=r"^[a-z0-9_-]{0,40}$")
    ingest_batch_max_readings: int = Field(20000, ge=1)
    ingest_batch_max_wait_ms: int = Field(20, ge=1)
    ingest_max_inflight_messages: int = Field(20000, ge=10)
    # batches stored at once, each on its own connection (ingestion/pipeline.py)
    ingest_store_connections: int = Field(2, ge=1, le=8)
    # keep readings_latest in the stores' transactions (off only to measure its cost), each
    # worker writing it at most every ..._every_ms (0: every store; ingestion/latest.py)
    ingest_keep_latest: bool = True
    ingest_latest_every_ms: int = Field(250, ge=0, le=60_000)
    # the worker's CPU nice value (ingestion/priority.py; its database sessions keep theirs): below
    # the API's readers on a shared machine; 0 keeps the priority it was started with
    ingest_nice: int = Field(10, ge=0, le=19)
    ingest_metrics_port: int = Field(0, ge=0, le=65535)  # 0: no metrics endpoint
    ingest_metrics_host: str = "127.0.0.1"
    ingest_rules_reload_s: float = Field(5.0, gt=0)
    # the point registry is re-read this often, and at once on a change (LISTEN/NOTIFY)
    ingest_registry_refresh_s: float = Field(5.0, gt=0)
    # readings stamped outside [now - max past, now + max future] are dead-lettered
    # (out_of_window); the past covers a gateway's outage, as long as batch keys are kept
    ingest_max_past_s: float = Field(30 * 86400.0, gt=0)
    ingest_max_future_s: float = Field(300.0, ge=0)
    # how long the broker keeps a stopped worker's session and its share of messages; a worker
    # in the same slot (or started with INGEST_CLIENT_ID) within it resumes them
    ingest_session_expiry_s: int = Field(3600, ge=0)
    # a fixed client id instead of this host's slot: to take over a dead host's session
    ingest_client_id: str = Field("", pattern=r"^[A-Za-z0-9_.-]{0,100}$")
    ingest_offline_check_s: float = Field(5.0, gt=0)
    ingest_rollup_refresh_s: float = Field(15.0, gt=0)
    # share of the time the rollup refresh may work: it yields the rest to the stores
    ingest_rollup_duty: float = Field(0.1, gt=0, le=1)
    ingest_retention_check_s: float = Field(3600.0, gt=0)
    # days per table, merged over ingestion/retention.py DEFAULT_DAYS, e.g. {"readings": 90}
    ingest_retention_days: dict[str, int] = {}
    # api
    api_host: str = "127.0.0.1"
    # HTTPS served by the API itself (api/tls_serve.py): the local CA's certificate or the
    # county's own; and a plain-HTTP port that only redirects to it (0: none)
    api_tls_cert_file: Path | None = None
    api_tls_key_file: Path | None = None
    api_http_redirect_port: int = Field(0, ge=0, le=65535)
    # what the API's in-repo clients (`cityops security check`...) trust for its certificate:
    # the local CA's ca.crt (`stack up` writes it); unset: the system's CAs
    api_ca_file: Path | None = None
    api_port: int = Field(8080, ge=0, le=65535)
    # API processes sharing the port: one request is mostly Python (routing, validation,
    # encoding), so a second process is what lets a second core answer (docs/api.md)
    api_workers: int = Field(0, ge=0, le=32)  # 0: one per core, at most 4
    # per API process: encoded answers of closed periods of buckets (api/bucket_cache.py); 0 off
    api_bucket_cache_mb: int = Field(256, ge=0, le=65536)
    # after start-up, its objects moved out of the garbage collector's full walks (gc.freeze:
    # docs/api.md); the suite turns it off, its processes start many apps
    api_gc_freeze: bool = True
    jwt_secret: SecretStr = SecretStr("")
    # encrypts stored credentials of department systems (datafoundation/secrets.py)
    secret_key: SecretStr = SecretStr("")
    # the access token's life; a person's session continues with its refresh token (api/sessions.py)
    jwt_ttl_s: int = Field(900, ge=2)
    # sessions (docs/security.md): idle people are logged out; a login lasts at most this long
    session_idle_timeout_s: int = Field(1800, ge=10)
    session_max_s: int = Field(12 * 3600, ge=60)
    display_token_days: int = Field(365, ge=1, le=3650)
    # identification (等保 身份鉴别): password rules, expiry, lockout, second factor
    password_min_length: int = Field(12, ge=8, le=128)
    password_min_classes: int = Field(3, ge=1, le=4)
    password_history: int = Field(5, ge=0, le=24)
    password_max_age_days: int = Field(90, ge=0)  # 0: passwords never expire
    password_warn_days: int = Field(14, ge=0)
    auth_lockout_s: int = Field(1800, ge=1)
    totp_required_roles: list[str] = ["admin", "security_admin", "audit_admin"]
    # the audit log is kept at least this long (等保: 180 days); only the retention job removes
    audit_retention_days: int = Field(365, ge=180)
    # the API is reached over HTTPS (a TLS proxy or uvicorn's own): HSTS is sent
    api_https: bool = False
    # failed logins and API keys allowed per account (or key prefix) and per client address
    # within the window, counted in the database for every API process (api/throttle.py)
    auth_failures_per_account: int = Field(10, ge=1)
    auth_failures_per_address: int = Field(100, ge=1)
    auth_failure_window_s: int = Field(900, ge=1)
    # onboarding edits this Mosquitto's accounts (default <state_dir>/broker; docs/api.md)
    broker_state_dir: Path | None = None
    # the broker address handed to gateways when they are registered (default mqtt_url)
    gateway_mqtt_url: str | None = None
    # our own loggers; libraries stay at WARNING unless named in log_levels (cityops/logging.py)
    log_level: str = "INFO"
    log_levels: dict[str, str] = {}  # e.g. {"asyncua": "INFO"} while diagnosing a device
    # city events and the catalogue: dates the holiday library does not know yet (JSON lists of
    # ISO dates), and the largest attachment accepted
    calendar_extra_holidays: list[date] = Field(default_factory=list)
    calendar_extra_workdays: list[date] = Field(default_factory=list)
    upload_max_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    # office files previewed as PDF (datafoundation/office_preview.py): LibreOffice's command,
    # how long one conversion may take, the largest file converted (larger: download only)
    office_preview_soffice: str = "soffice"
    office_preview_timeout_s: float = Field(60.0, gt=0, le=600)
    office_preview_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # LibreOffice in a network namespace of its own (no linked image fetched from the web);
    # off only where the kernel refuses user namespaces
    office_preview_no_network: bool = True
    # 催办 (co-handling, docs/city-operations.md): a task's Nth reminder also goes to the
    # department's leader; so does the sweep's reminder of an overdue task unless turned off
    event_reminder_escalate_after: int = Field(2, ge=1, le=10)
    event_reminder_escalate_overdue: bool = True
    # a TrueType/OpenType font embedded in report PDFs (default: STSong-Light, not embedded)
    report_font_file: FilePath | None = None
    # cloud control: a clouds.yaml entry (OS_CLIENT_CONFIG_FILE points at the file)
    cloud_name: str = "cityops-lab"
    clouds_yaml: Path | None = None
    # default <state_dir>/ssh/id_ed25519, made by the worker on first start
    ansible_ssh_key_file: Path | None = None
    quota_alarm_ratio: float = Field(0.9, gt=0, le=1)
    # a job whose worker sent no heartbeat for this long is handed to another worker
    job_stalled_after_s: int = Field(30, ge=2)
    # the clouds the API queues jobs for (each served by workers with that cloud_name);
    # empty: cloud_name only (docs/cloud.md, several clouds)
    cloud_names: list[str] = []
    # networks whose addresses the worker reaches over SSH directly; a server outside them
    # needs `cityops_ssh` metadata, or a playbook run against it is refused
    ansible_ssh_networks: list[str] = []
    # cached wheelhouse for playbooks that install the platform (default <state_dir>/wheelhouse)
    wheelhouse_dir: Path | None = None
    # the map's basemap: a county's PMTiles file served with range requests (docs/map.md);
    # unset, the default outline built from open data is served instead
    map_pmtiles_path: Path | None = None

    @field_validator("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file",
                     "ingest_mqtt_cert_file", "ingest_mqtt_key_file", "api_mqtt_cert_file",
                     "api_mqtt_key_file", "api_ca_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        # at start, with the variable's name (load_settings), not at the first connection
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level_number(value)  # ValueError naming the accepted levels
        return value.upper()

    @field_validator("log_levels")
    @classmethod
    def _known_levels(cls, value: dict[str, str]) -> dict[str, str]:
        for level in value.values():
            level_number(level)
        return {name: level.upper() for name, level in value.items()}


def deployment_of(settings: Settings) -> str:
    """`deployment_id`, or the database's name made topic-safe: every process of a deployment
    uses the same database, two deployments on one cluster use two."""
    if settings.deployment_id:
        return settings.deployment_id
    url = settings.database_url.get_secret_value()
    match = re.search(r"dbname=([^\s]+)", url) if "://" not in url else None
    name = match[1] if match else urlsplit(url).path.lstrip("/")
    return re.sub(r"[^a-z0-9_-]", "-", name.lower())[:40] or "cityops"


def env_file_path() -> Path:
    explicit = os.environ.get("CITYOPS_ENV_FILE")
    if explicit:
        return Path(explicit)
    state = Path(os.environ.get("CITYOPS_STATE_DIR", str(DEFAULT_STATE_DIR)))
    return state / "local.env"


def load_settings(**overrides: object) -> Settings:
    """Read settings once, in an entry point; a bad value fails with the variable's name."""
    env_file = env_file_path()
    try:
        return Settings(_env_file=env_file if env_file.exists() else None, **overrides)
    except ValidationError as err:
        problems = "; ".join(
            f"CITYOPS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from err
