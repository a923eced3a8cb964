"""accepts_gzip (api/content_coding.py): Accept-Encoding as RFC 9110 reads it."""

from __future__ import annotations

import pytest

from api.content_coding import accepts_gzip


@pytest.mark.parametrize(("header", "accepted"), [
    ("gzip", True), ("gzip, deflate, br, zstd", True), ("br;q=1.0, GZIP;q=0.5", True),
    ("*", True), ("x-gzip", True), ("gzip;q=0", False), ("gzip; q=0.000", False),
    ("*;q=0", False), ("identity", False), ("br, deflate", False), ("", False), (None, False),
    ("gzip;q=oops", False), ("gzipped", False),
])
def test_gzip_accepted_only_when_offered_with_a_weight_above_zero(
        header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted
