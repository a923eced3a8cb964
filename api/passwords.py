"""Password rules (等保 level 3, 身份鉴别; docs/security.md): complexity, history, expiry.

- Complexity: at least `password_min_length` characters from at least `password_min_classes`
  of four classes (lowercase, uppercase, digits, others), and not containing the login name.
- History: none of the user's last `password_history` passwords again (argon2 hashes kept in
  `password_history`, migration 107).
- Expiry: a password older than `password_max_age_days` no longer logs in (the person sets a
  new one at POST /v1/auth/password with the old one); within `password_warn_days` of that
  the login answer carries a warning.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from psycopg import AsyncConnection

from api.auth import hash_password, verify_password
from cityops.errors import InvalidInput
from cityops.settings import Settings

CLASSES = (("lowercase letters", str.islower), ("uppercase letters", str.isupper),
           ("digits", str.isdigit), ("other characters", lambda c: not c.isalnum()))


def check_complexity(password: str, username: str, settings: Settings) -> None:
    """InvalidInput naming the rule the password breaks."""
    if len(password) < settings.password_min_length:
        raise InvalidInput(f"password: at least {settings.password_min_length} characters")
    used = [name for name, test in CLASSES if any(test(c) for c in password)]
    if len(used) < settings.password_min_classes:
        names = ", ".join(name for name, _ in CLASSES)
        raise InvalidInput(f"password: use at least {settings.password_min_classes} of {names}"
                           f" (this one has {len(used)})")
    if username and username.lower() in password.lower():
        raise InvalidInput("password: must not contain the login name")


async def _reused(conn: AsyncConnection, username: str, password: str, keep: int) -> bool:
    if keep == 0:
        return False
    cur = await conn.execute(
        "SELECT password_hash FROM users WHERE username = %s UNION ALL"
        " (SELECT password_hash FROM password_history WHERE username = %s"
        "  ORDER BY set_at DESC LIMIT %s)", (username, username, keep - 1))
    hashes = [r[0] for r in await cur.fetchall()]
    # argon2 costs tens of ms each: off the event loop
    return await asyncio.to_thread(lambda: any(verify_password(h, password) for h in hashes))


async def set_password(conn: AsyncConnection, username: str, password: str,
                       settings: Settings) -> None:
    """Check the rules and the history, then store the new password (the trigger of
    migration 062 bumps auth_version: every token and session of the user ends)."""
    check_complexity(password, username, settings)
    if await _reused(conn, username, password, settings.password_history):
        raise InvalidInput(f"password: one of the last {settings.password_history} passwords"
                           " of this user; choose another")
    new_hash = await asyncio.to_thread(hash_password, password)
    await conn.execute(
        "INSERT INTO password_history (username, password_hash)"
        " SELECT username, password_hash FROM users WHERE username = %s", (username,))
    await conn.execute(
        "UPDATE users SET password_hash = %s, password_changed_at = now() WHERE username = %s",
        (new_hash, username))
    await conn.execute(  # only what the rule needs is kept
        "DELETE FROM password_history WHERE username = %s AND set_at < (SELECT min(set_at)"
        " FROM (SELECT set_at FROM password_history WHERE username = %s"
        " ORDER BY set_at DESC LIMIT %s) kept)", (username, username, settings.password_history))


def expiry(changed_at: datetime, now: datetime, settings: Settings
           ) -> tuple[datetime | None, bool, bool]:
    """(when the password expires or None, expired now, within the warning time)."""
    if settings.password_max_age_days == 0:
        return None, False, False
    expires_at = changed_at + timedelta(days=settings.password_max_age_days)
    return (expires_at, expires_at <= now,
            expires_at - timedelta(days=settings.password_warn_days) <= now)
