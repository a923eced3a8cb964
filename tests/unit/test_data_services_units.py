"""Masking rules and data-service request parsing, as pure functions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cityops.errors import InvalidInput
from datafoundation.services import masking as m
from datafoundation.services import request as rq


def test_id_card_keeps_first_six_and_last_four() -> None:
    assert m.mask("id_card", "34062119900307123X") == "340621********123X"
    assert m.mask("id_card", "340621900307123") == "340621*****7123"  # the old 15 digits
    assert m.mask("id_card", "12345") == m.FULL


def test_phone_hides_the_middle_four_digits() -> None:
    assert m.mask("phone", "13812345678") == "138****5678"
    assert m.mask("phone", "0561-6123456") == "0561-6****56"


def test_name_keeps_the_surname_only() -> None:
    assert m.mask("name", "张三") == "张*"
    assert m.mask("name", "王小明") == "王**"
    assert m.mask("name", "欧阳修") == "欧阳*"
    assert m.mask("name", "李") == "李*"  # never the whole name, even when it is one character


def test_full_and_secret_fields_hide_everything_and_none_stays_none() -> None:
    assert m.mask("full", "任何内容") == m.FULL
    assert m.effective_kind("none", 3) == "full" and m.effective_kind("none", 2) == "none"
    assert m.effective_kind("phone", 1) == "phone"
    assert m.mask("phone", None) is None and m.mask("none", "x") == "x"
    rows = m.mask_rows([{"a": "13812345678", "b": "张三"}], {"a": "phone", "b": "none"})
    assert rows == [{"a": "138****5678", "b": "张三"}]


TYPES = {"id": "bigint", "capital": "numeric(18,2)", "day": "date", "town": "text",
         "ok": "boolean"}


def test_filters_are_typed_by_the_field() -> None:
    assert rq.parse_filter("capital:range:100,", TYPES).values == (Decimal(100), None)
    assert rq.parse_filter("town:in:a,b", TYPES).values == ("a", "b")
    assert rq.parse_filter("ok:eq:true", TYPES).values == (True,)
    assert str(rq.parse_filter("day:eq:2026-01-02", TYPES).values[0]) == "2026-01-02"


@pytest.mark.parametrize(("text", "named"), [
    ("nope:eq:1", "nope"), ("id:like:1", "like"), ("id:eq:x1", "id"),
    ("capital:range:5,1", "low bound"), ("capital:range:,", "range"), ("id", "field:op:value"),
])
def test_bad_filters_name_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        rq.parse_filter(text, TYPES)


def test_cursor_round_trip_and_refusal() -> None:
    cursor = rq.encode_cursor([42])
    assert rq.decode_cursor(cursor, ["id"], TYPES) == [Decimal(42)]
    with pytest.raises(InvalidInput, match="after"):
        rq.decode_cursor(cursor, ["id", "town"], TYPES)
    with pytest.raises(InvalidInput, match="after"):
        rq.decode_cursor("%%%", ["id"], TYPES)
