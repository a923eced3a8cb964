"""API keys: made once, shown once, kept as a hash. Below every domain: the catalogue's portal
issues keys to applications as the access routes do for services."""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "cok_"


def new_api_key() -> tuple[str, str, str]:
    """(the key as shown once, its prefix for recognising it later, the hash kept)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:12], hash_api_key(key)


def hash_api_key(key: str) -> str:
    # 32 random bytes cannot be guessed: a fast hash suffices and keeps each call cheap
    return hashlib.sha256(key.encode()).hexdigest()
