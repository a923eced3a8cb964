"""Pure logic of the data foundation: USCC check digits, credential encryption, drift."""

from __future__ import annotations

import random

import pytest

from cityops.errors import ConfigError
from datafoundation import raw
from datafoundation.secrets import decrypt, encrypt
from datafoundation.sources import Column
from simulators.departments.enterprise_registry import make_uscc, uscc_check


def test_uscc_check_digit_matches_a_published_code_and_dirty_codes_fail_it():
    assert uscc_check("91350100M000100Y4") == "3"  # 91350100M000100Y43
    rng = random.Random(1)
    good, bad = make_uscc(rng), make_uscc(rng, valid=False)
    assert uscc_check(good[:17]) == good[17]
    assert uscc_check(bad[:17]) != bad[17]


def test_credentials_round_trip_only_with_the_key():
    token = encrypt("key-one", {"password": "s3cret"})
    assert b"s3cret" not in token
    assert decrypt("key-one", token) == {"password": "s3cret"}
    with pytest.raises(ConfigError, match="do not open with CITYOPS_SECRET_KEY"):
        decrypt("key-two", token)
    with pytest.raises(ConfigError, match="CITYOPS_SECRET_KEY is not set"):
        encrypt("", {"password": "x"})


def test_drift_names_added_dropped_and_retyped_columns():
    before = [{"name": "id", "pg_type": "bigint"}, {"name": "phone", "pg_type": "text"},
              {"name": "old", "pg_type": "text"}]
    now = [Column("id", "bigint"), Column("phone", "bigint"), Column("new", "date")]
    assert raw.drift(before, now) == {"added": ["new"], "dropped": ["old"],
                                      "retyped": [["phone", "text", "bigint"]]}
    assert raw.drift(None, now) == {}
    assert raw.drift(before, [Column("id", "bigint"), Column("phone", "text"),
                              Column("old", "text")]) == {}
