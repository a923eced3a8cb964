"""Who is calling: people with a password get a short-lived JWT; roles gate every route."""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from cityops.errors import AuthError

_HASHER = PasswordHasher()
# verifying against a real hash even for unknown users keeps response times alike
_DUMMY_HASH = _HASHER.hash("not-a-password")


class Role(StrEnum):
    ADMIN = "admin"
    OPS_ENGINEER = "ops_engineer"
    FIELD_TECHNICIAN = "field_technician"
    OPERATOR = "operator"
    DISPATCHER = "dispatcher"
    DEPARTMENT_STAFF = "department_staff"
    VIEWER = "viewer"
    DATA_ADMIN = "data_admin"  # the county data bureau: systems, sources, syncs (数据汇聚)


ALL_ROLES = frozenset(Role)


API_KEY_PREFIX = "cok_"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    kind: str = "user"  # or "api_key"
    key_id: int | None = None
    # an API key's scope: route patterns ("GET /v1/readings/*") and departments (None: all)
    routes: tuple[str, ...] = ()
    # the departments whose objects the caller may see and act on (None: every department):
    # an API key's own list, a department_staff user's department (api/identity.py)
    departments: frozenset[str] | None = None
    # a user's auth_version the token was issued under (migration 062)
    version: int = 0

    def may_call(self, method: str, route: str) -> bool:
        if self.kind != "api_key":
            return True
        target = f"{method} {route}"
        return any(fnmatch.fnmatchcase(target, pattern) for pattern in self.routes)

    def sees_department(self, department: str | None) -> bool:
        return self.departments is None or department in self.departments


def new_api_key() -> tuple[str, str, str]:
    """(the key as shown once, its prefix for recognising it later, the hash kept)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:12], hash_api_key(key)


def hash_api_key(key: str) -> str:
    # 32 random bytes cannot be guessed: a fast hash suffices and keeps each call cheap
    return hashlib.sha256(key.encode()).hexdigest()


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
    claims = {"sub": principal.name, "role": principal.role.value, "ver": principal.version,
              "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]})
        return Principal(claims["sub"], Role(claims["role"]), version=int(claims.get("ver", 0)))
    except jwt.ExpiredSignatureError as err:
        raise AuthError("token expired") from err
    except (jwt.InvalidTokenError, KeyError, ValueError) as err:
        raise AuthError("invalid token") from err
