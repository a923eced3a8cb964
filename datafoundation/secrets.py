"""Credentials of department systems, encrypted at rest with the deployment's secret key."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken

from cityops.errors import ConfigError


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ConfigError("CITYOPS_SECRET_KEY is not set: credentials cannot be stored or read")
    # any secret text works: Fernet wants 32 url-safe base64 bytes, so hash it to that
    digest = hashlib.sha256(("cityops-sources:" + secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret_key: str, credentials: dict[str, str]) -> bytes:
    return _fernet(secret_key).encrypt(json.dumps(credentials).encode())


def decrypt(secret_key: str, token: bytes | None) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(_fernet(secret_key).decrypt(bytes(token)))
    except InvalidToken as err:
        raise ConfigError("stored credentials do not open with CITYOPS_SECRET_KEY "
                          "(the key changed?)") from err
