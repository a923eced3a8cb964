"""Verified tokens kept until they expire (api/auth.py): a cached token is still refused
once expired, under another secret, or altered; the cache answers what decoding answers."""

from __future__ import annotations

import pytest

from api.auth import _VERIFIED, issue_token, read_token
from cityops.errors import AuthError
from cityops.principal import Principal, Role
from tests.helpers import wait_for

SECRET, OTHER = "s" * 40, "o" * 40


def _refused(token: str, secret: str = SECRET) -> bool:
    try:
        read_token(token, secret)
    except AuthError:
        return True
    return False


def test_cached_tokens_answer_as_decoded_and_expire() -> None:
    token = issue_token(Principal("ana", Role.OPERATOR, version=3, session="s1"), SECRET, 1)
    first = read_token(token, SECRET)
    assert len(_VERIFIED) >= 1 and read_token(token, SECRET) == first
    assert (first.name, first.role, first.version, first.session) == ("ana", Role.OPERATOR,
                                                                       3, "s1")
    assert _refused(token, OTHER)  # cached under its own secret only
    head, body, sig = token.split(".")
    assert _refused(f"{head}.{body}.{sig[:-2]}AA")
    with pytest.raises(AuthError, match="expired"):
        wait_for(lambda: _refused(token), timeout_s=5, interval_s=0.1, what="expiry")
        read_token(token, SECRET)
