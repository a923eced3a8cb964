"""Who is calling: people with a password get a short-lived JWT; roles gate every route."""

from __future__ import annotations

import time

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from cityops.errors import AuthError
from cityops.principal import Principal, Role

_HASHER = PasswordHasher()
# verifying against a real hash even for unknown users keeps response times alike
_DUMMY_HASH = _HASHER.hash("not-a-password")


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
