"""The TOTP second factor (RFC 6238 through pyotp; 等保 level 3: two factors for
administrators). Enrolment answers the otpauth:// URI and its QR code (SVG, made here by
segno: no network); the first code confirms it and answers ten one-time recovery codes. The
secret is stored encrypted (migration 107); a code is accepted once (its time step is kept).
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import time

import pyotp
import segno
from cryptography.fernet import Fernet
from psycopg import AsyncConnection

from cityops.errors import Conflict, InvalidInput
from cityops.settings import Settings

ISSUER = "CityOps"
RECOVERY_CODES = 10
STEP_S = 30


def _fernet(settings: Settings) -> Fernet:
    # the JWT secret is always set (>= 32 characters); a new JWT secret means re-enrolling
    digest = hashlib.sha256(("cityops-totp:" + settings.jwt_secret.get_secret_value())
                            .encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").lower().encode()).hexdigest()


async def enrolled(conn: AsyncConnection, username: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM user_totp WHERE username = %s"
                             " AND confirmed_at IS NOT NULL", (username,))
    return await cur.fetchone() is not None


async def start(conn: AsyncConnection, username: str, settings: Settings) -> dict:
    """A new secret for the user (replacing an unconfirmed one): its URI and QR code."""
    if await enrolled(conn, username):
        raise Conflict(f"{username} has a second factor already: a security administrator"
                       " resets it first")
    secret = pyotp.random_base32()
    await conn.execute(
        "INSERT INTO user_totp (username, secret) VALUES (%s, %s) ON CONFLICT (username)"
        " DO UPDATE SET secret = excluded.secret, created_at = now(), last_step = 0",
        (username, _fernet(settings).encrypt(secret.encode())))
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    svg = io.BytesIO()
    segno.make(uri, error="m").save(svg, kind="svg", scale=4)
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": svg.getvalue().decode()}


async def _row(conn: AsyncConnection, username: str, settings: Settings):
    cur = await conn.execute("SELECT secret, confirmed_at, recovery_hashes, last_step"
                             " FROM user_totp WHERE username = %s FOR UPDATE", (username,))
    row = await cur.fetchone()
    if row is None:
        return None
    return pyotp.TOTP(_fernet(settings).decrypt(bytes(row[0])).decode()), *row[1:]


async def _accept_code(conn: AsyncConnection, username: str, totp: pyotp.TOTP, code: str,
                       last_step: int) -> bool:
    now = time.time()
    for drift in (0, -1, 1):  # one step either way: clocks and typing take time
        step = int(now // STEP_S) + drift
        if step > last_step and secrets.compare_digest(totp.at(step * STEP_S), code):
            await conn.execute("UPDATE user_totp SET last_step = %s WHERE username = %s",
                               (step, username))
            return True
    return False


async def confirm(conn: AsyncConnection, username: str, code: str,
                  settings: Settings) -> list[str]:
    """The first code confirms the enrolment; answers the recovery codes (shown once)."""
    found = await _row(conn, username, settings)
    if found is None or found[1] is not None:
        raise Conflict("no enrolment waiting for a first code: start one first")
    if not await _accept_code(conn, username, found[0], code.strip(), found[3]):
        raise InvalidInput("code: not the current code of this enrolment")
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    await conn.execute("UPDATE user_totp SET confirmed_at = now(), recovery_hashes = %s"
                       " WHERE username = %s", ([_hash(c) for c in codes], username))
    return codes


async def verify(conn: AsyncConnection, username: str, code: str, settings: Settings) -> bool:
    """A current code (once) or an unused recovery code (then spent)."""
    found = await _row(conn, username, settings)
    if found is None or found[1] is None:
        return False
    totp, _, recovery, last_step = found
    code = code.strip()
    if code.isdigit() and len(code) == 6:
        return await _accept_code(conn, username, totp, code, last_step)
    hashed = _hash(code)
    if hashed in recovery:
        await conn.execute("UPDATE user_totp SET recovery_hashes ="
                           " array_remove(recovery_hashes, %s) WHERE username = %s",
                           (hashed, username))
        return True
    return False


async def reset(conn: AsyncConnection, username: str) -> bool:
    cur = await conn.execute("DELETE FROM user_totp WHERE username = %s", (username,))
    return cur.rowcount > 0
