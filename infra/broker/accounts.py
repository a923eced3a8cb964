"""Broker accounts (services, gateways) and the Mosquitto password and ACL files made from them."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from cityops.errors import Conflict, InvalidInput, NotFound

TOPIC_ROOT = "cityops/v1"
ACCOUNTS_FILE = "accounts.json"
Kind = Literal["service", "gateway"]

# Mosquitto 2's "$7$" format: PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte key, base64 with padding.
# 101 iterations is mosquitto_passwd's default; every password here is 32 random bytes, so the
# iteration count adds no protection worth the CPU spent on each CONNECT.
_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12
_KEY_BYTES = 64

# A gateway id becomes a topic level and a username: no wildcards, separators or `$`, and it
# must not start with `_`, which would reach `_internal`, or `svc-`, reserved for services.
_GATEWAY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

# (access, topic below the root) per service; `+` stands for any gateway
SERVICE_RULES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "svc-ingest": (
        ("read", "+/telemetry"),
        ("read", "+/status"),
        ("read", "+/command-results/#"),
        ("write", "+/receipts"),  # commit receipts to each gateway (docs/wire.md)
        ("readwrite", "_internal/#"),
    ),
    "svc-api": (
        ("write", "+/commands/#"),
        ("write", "+/config"),
        ("read", "+/status"),
        ("read", "+/command-results/#"),
        ("read", "_internal/#"),
    ),
    # the broker's own admin: changes the dynamic-security plugin's gateways (dynsec.py)
    "svc-broker": (
        ("readwrite", "$CONTROL/dynamic-security/#"),
        ("read", "$SYS/broker/#"),  # what an operator checks (docs/ingestion.md)
    ),
}

GATEWAY_RULES = (
    ("write", "{gw}/telemetry"),
    ("write", "{gw}/status"),
    ("write", "{gw}/command-results/#"),
    ("read", "{gw}/commands/#"),
    ("read", "{gw}/config"),
    ("read", "{gw}/receipts"),
)


@dataclass(frozen=True)
class Account:
    kind: Kind
    password_hash: str
    revoked: bool = False


def new_password() -> str:
    return secrets.token_urlsafe(32)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS, _KEY_BYTES)
    salt_b64, key_b64 = base64.b64encode(salt).decode(), base64.b64encode(key).decode()
    return f"$7${_PBKDF2_ITERATIONS}${salt_b64}${key_b64}"


def verify_password(password: str, password_hash: str) -> bool:
    try:
        _, kind, iterations, salt_b64, key_b64 = password_hash.split("$")
        salt, key = base64.b64decode(salt_b64), base64.b64decode(key_b64)
        rounds = int(iterations)
    except ValueError:
        return False
    if kind != "7":
        return False
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds, len(key))
    return hmac.compare_digest(candidate, key)


def check_gateway_id(gateway_id: str) -> str:
    if not _GATEWAY_ID.fullmatch(gateway_id) or gateway_id.startswith("svc-"):
        raise InvalidInput(
            f"invalid gateway id {gateway_id!r}: 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit, not 'svc-'"
        )
    return gateway_id


def load_accounts(state_dir: Path) -> dict[str, Account]:
    path = state_dir / ACCOUNTS_FILE
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {name: Account(**fields) for name, fields in raw["accounts"].items()}


def save_accounts(state_dir: Path, accounts: Mapping[str, Account]) -> None:
    body = {"version": 1, "accounts": {n: asdict(a) for n, a in sorted(accounts.items())}}
    write_private(state_dir / ACCOUNTS_FILE, json.dumps(body, indent=2) + "\n")


def write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with a file only its owner can read."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextmanager
def _locked(state_dir: Path) -> Iterator[dict[str, Account]]:
    """Load, let the caller change, then save the store, one writer at a time."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".accounts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        accounts = load_accounts(state_dir)
        yield accounts
        save_accounts(state_dir, accounts)


def ensure_service_account(state_dir: Path, name: str, password: str) -> bool:
    """Make `name` a service account with `password`; True when the store changed."""
    if name not in SERVICE_RULES:
        raise InvalidInput(f"unknown service account {name!r}: one of {sorted(SERVICE_RULES)}")
    with _locked(state_dir) as accounts:
        current = accounts.get(name)
        if current and not current.revoked and verify_password(password, current.password_hash):
            return False
        accounts[name] = Account(kind="service", password_hash=hash_password(password))
        return True


def add_gateway(state_dir: Path, gateway_id: str) -> str:
    """Create (or re-enable after a revoke) a gateway account; the password is returned once."""
    check_gateway_id(gateway_id)
    with _locked(state_dir) as accounts:
        current = accounts.get(gateway_id)
        if current and not current.revoked:
            raise Conflict(f"gateway {gateway_id!r} already has broker credentials")
        password = new_password()
        accounts[gateway_id] = Account(kind="gateway", password_hash=hash_password(password))
        return password


def revoke_gateway(state_dir: Path, gateway_id: str) -> None:
    with _locked(state_dir) as accounts:
        current = accounts.get(gateway_id)
        if current is None or current.kind != "gateway":
            raise NotFound(f"no gateway account {gateway_id!r}")
        accounts[gateway_id] = replace(current, revoked=True)


def render_password_file(accounts: Mapping[str, Account]) -> str:
    return "".join(
        f"{name}:{acct.password_hash}\n"
        for name, acct in sorted(accounts.items())
        if not acct.revoked
    )


def render_acl(accounts: Mapping[str, Account], topic_root: str = TOPIC_ROOT) -> str:
    """Per-user blocks only: no `pattern` lines, so an account without a block gets nothing."""
    blocks = ["# Generated by CityOps from accounts.json; edits are overwritten.\n"]
    for name, acct in sorted(accounts.items()):
        if acct.revoked:
            continue
        rules = SERVICE_RULES.get(name, ()) if acct.kind == "service" else GATEWAY_RULES
        lines = [f"user {name}"]
        lines += [f"topic {access} {_absolute(t.format(gw=name), topic_root)}"
                  for access, t in rules]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _absolute(topic: str, topic_root: str) -> str:
    """Rules are below the topic root, but for the broker's own `$` topics."""
    return topic if topic.startswith("$") else f"{topic_root}/{topic}"
