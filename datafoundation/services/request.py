"""A data-service request, checked against the dataset's registered fields: the fields asked
for, the filters (eq, in, range) with values of the field's own type, and the keyset cursor.
Errors name the field and say what is wrong; they never echo a stored value."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from cityops.errors import InvalidInput

OPERATORS = ("eq", "in", "range")
MAX_IN_VALUES = 500
_NUMERIC = ("smallint", "integer", "bigint", "int", "numeric", "decimal", "real", "double")


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    values: tuple  # eq: (v,); in: (v, ...); range: (low or None, high or None)


def _family(data_type: str) -> str:
    kind = data_type.lower()
    if kind.startswith(_NUMERIC):
        return "number"
    if kind.startswith("timestamp"):
        return "timestamp"
    if kind == "date":
        return "date"
    if kind.startswith("bool"):
        return "boolean"
    return "text"


def typed(field: str, data_type: str, text: str) -> Any:
    """The caller's filter value as the field's type, or InvalidInput naming the field."""
    family = _family(data_type)
    try:
        if family == "number":
            return Decimal(text)
        if family == "timestamp":
            return datetime.fromisoformat(text)
        if family == "date":
            return date.fromisoformat(text)
        if family == "boolean":
            return {"true": True, "false": False}[text.lower()]
    except (InvalidOperation, ValueError, KeyError):
        raise InvalidInput(f"filter on {field}: the value is not a {family} "
                           f"(the field is {data_type})") from None
    return text


def parse_filter(text: str, types: dict[str, str]) -> Filter:
    """`field:eq:value`, `field:in:a,b,c` or `field:range:low,high` (either bound may be
    empty; both inclusive)."""
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise InvalidInput(f"filter {text[:60]!r}: write field:op:value (op: eq, in, range)")
    field, op, raw = parts
    if field not in types:
        raise InvalidInput(f"filter: the dataset has no field {field!r}")
    if op not in OPERATORS:
        raise InvalidInput(f"filter on {field}: operator {op!r} is not one of eq, in, range")
    if op == "eq":
        return Filter(field, op, (typed(field, types[field], raw),))
    items = raw.split(",")
    if op == "in":
        if not 1 <= len(items) <= MAX_IN_VALUES:
            raise InvalidInput(f"filter on {field}: 'in' takes 1 to {MAX_IN_VALUES} values")
        return Filter(field, op, tuple(typed(field, types[field], v) for v in items))
    if len(items) != 2 or items == ["", ""]:
        raise InvalidInput(f"filter on {field}: 'range' takes low,high (one may be empty)")
    low, high = (typed(field, types[field], v) if v else None for v in items)
    if low is not None and high is not None and low > high:
        raise InvalidInput(f"filter on {field}: the range's low bound is above its high bound")
    return Filter(field, op, (low, high))


def select_fields(asked: str | None, names: list[str]) -> list[str]:
    """The fields asked for (comma-separated, in the dataset's order when omitted)."""
    if not asked:
        return list(names)
    wanted = [f.strip() for f in asked.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in names]
    if unknown:
        raise InvalidInput(f"fields: the dataset has no field(s) {', '.join(unknown)}")
    return list(dict.fromkeys(wanted))


def encode_cursor(key: list[Any]) -> str:
    raw = orjson.dumps(key, default=str)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, key_fields: list[str], types: dict[str, str]) -> list[Any]:
    """The primary-key values a page starts after, typed like the key's fields."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidInput("after: not a cursor this service gave out") from None
    if not isinstance(values, list) or len(values) != len(key_fields):
        raise InvalidInput("after: not a cursor of this dataset")
    return [typed(f, types[f], str(v)) for f, v in zip(key_fields, values, strict=True)]
