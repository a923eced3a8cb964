"""Who is calling: people with a password get a short-lived JWT; roles gate every route."""

from __future__ import annotations

import hashlib
import secrets
import time

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from cityops.api_keys import hash_api_key
from cityops.errors import AuthError
from cityops.principal import Principal, Role

_HASHER = PasswordHasher()
# verifying against a real hash even for unknown users keeps response times alike
_DUMMY_HASH = _HASHER.hash("not-a-password")


DISPLAY_PREFIX = "cod_"  # a wall's read-only token (api/sessions.py)
REFRESH_PREFIX = "cor_"  # a person's refresh token


def new_secret_token(prefix: str) -> tuple[str, str, str]:
    """A display or refresh token: (the token, its prefix, the hash kept), as for API keys."""
    token = prefix + secrets.token_urlsafe(32)
    return token, token[:12], hash_api_key(token)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, InvalidHashError):
        return False


def issue_token(principal: Principal, secret: str, ttl_s: int) -> str:
    now = int(time.time())
    # the role is informative (the console shows it); each request reads the user's own
    claims: dict = {"sub": principal.name, "role": principal.role.value,
                    "ver": principal.version, "iat": now, "exp": now + ttl_s}
    if principal.session is not None:
        claims["sid"] = principal.session  # logout and refresh reuse end it (api/sessions.py)
    if principal.enrol_only:
        claims["enrol"] = True
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(token: str, secret: str) -> Principal:
    return _verified(token, secret)[1]


# Verified tokens, by a hash of secret and token, until they expire (issue #21): decoding
# and checking a JWT was ~5 % of a small read's CPU. Only the signature and expiry check is
# kept: whether the user may still act (disabled, demoted, password changed, logged out) is
# asked on every request (api/identity.py), so a revoked token loses access as before.
_VERIFIED: dict[bytes, tuple[float, Principal]] = {}
_VERIFIED_MAX = 10_000


def _verified(token: str, secret: str) -> tuple[float, Principal]:
    key = hashlib.sha256(secret.encode() + b"\0" + token.encode()).digest()
    hit = _VERIFIED.get(key)
    if hit is not None and hit[0] > time.time():
        return hit
    found = _decode(token, secret)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = found
    return found


def _decode(token: str, secret: str) -> tuple[float, Principal]:
    """(the expiry, the principal) of a token signed with `secret`; AuthError otherwise."""
    try:
        # one algorithm only: a token saying `alg: none` (or any other) is refused here
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]})
        sid = claims.get("sid")
        return float(claims["exp"]), Principal(
            claims["sub"], Role(claims["role"]), version=int(claims.get("ver", 0)),
            session=str(sid) if sid is not None else None,
            enrol_only=claims.get("enrol") is True)
    except jwt.ExpiredSignatureError as err:
        raise AuthError("token expired") from err
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as err:
        raise AuthError("invalid token") from err
