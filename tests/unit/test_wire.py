"""The wire contract: topics, payload validation, and the published JSON Schemas."""

import json
import uuid
from pathlib import Path

import pytest

from cityops import wire
from cityops.errors import WireError

SCHEMA_DIR = Path(__file__).parents[2] / "docs" / "schemas"

# fixed, not uuid4(): the ids of parametrized tests must be the same in every xdist worker
STREAM = b"5b0c6a3e-8f21-4c57-9d3a-2f8e1b7c4d10"


def test_gateway_of_telemetry_topic() -> None:
    assert wire.gateway_of("cityops/v1/gw-01/telemetry", "telemetry") == "gw-01"
    with pytest.raises(WireError):
        wire.gateway_of("cityops/v1/gw-01/status", "telemetry")
    with pytest.raises(WireError):
        wire.gateway_of("other/v1/gw-01/telemetry", "telemetry")


def test_telemetry_round_trip() -> None:
    message = wire.Telemetry(
        stream=uuid.uuid4(), seq=7,
        readings=[wire.WireReading(device="ups-01", point="battery_pct", ts=1, value=87.5)],
    )
    assert wire.decode(wire.Telemetry, wire.encode(message)) == message


@pytest.mark.parametrize(
    ("raw", "reason", "where"),
    [
        (b"{not json", "invalid_json", ""),
        (b'{"stream": "x", "seq": 1, "readings": []}', "schema", "stream"),
        (b'{"stream": "%s", "seq": -1, "readings": [{}]}' % STREAM,
         "schema", "seq"),
    ],
)
def test_bad_payloads_say_why(raw: bytes, reason: str, where: str) -> None:
    with pytest.raises(WireError) as info:
        wire.decode(wire.Telemetry, raw)
    assert info.value.context["reason"] == reason
    assert where in info.value.detail


def test_bool_values_stay_bool() -> None:
    raw = b'{"device": "d", "point": "p", "ts": 1, "value": true}'
    assert wire.WireReading.model_validate_json(raw).value is True


@pytest.mark.parametrize("name", sorted(wire.json_schemas()))
def test_published_schemas_match_the_models(name: str) -> None:
    published = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    assert published == wire.json_schemas()[name], "run: python -m cityops.schemas"


def test_duplicate_keys_refused_on_every_payload() -> None:
    """Issue #22: two parsers of the same bytes must not disagree on what a payload says."""
    raw = b'{"status": "succeeded", "ts": 1, "status": "failed"}'
    with pytest.raises(WireError) as info:
        wire.decode(wire.CommandResult, raw)
    assert info.value.context["reason"] == "duplicate_key" and "status" in info.value.detail


@pytest.mark.parametrize(("model", "raw", "where"), [
    (wire.Telemetry, b'{"stream": "%s", "seq": 9223372036854775808, "readings": '
     b'[{"device": "d", "point": "p", "ts": 1, "value": 1}]}' % STREAM, "seq"),
    (wire.Status, b'{"state": "online", "queue_depth": 9223372036854775808}', "queue_depth"),
    (wire.Status, b'{"state": "online", "counters": {"sent": -9223372036854775809}}', "counters"),
    (wire.WriteCommand, b'{"device": "d", "point": "p", "value": NaN, "expires_at": 1}', "value"),
    (wire.WriteCommand, b'{"device": "d", "point": "p", "value": 1e999, "expires_at": 1}', "value"),
    (wire.CommandResult, b'{"status": "failed", "detail": "a\\u0000b", "ts": 1}', "detail"),
    (wire.Status, b'{"state": "online", "reasons": {"d1": "a\\u0000"}}', "reasons"),
])
def test_numbers_and_text_bounded_by_what_is_stored(model, raw: bytes, where: str) -> None:
    with pytest.raises(WireError) as info:
        wire.decode(model, raw)
    assert info.value.context["reason"] == "schema" and where in info.value.detail


# -- the grouped form (issue #21): one device at one time, column-wise ---------------------
def _grouped(*groups: str, readings: str = "") -> bytes:
    body = b'{"stream": "%s", "seq": 1' % STREAM
    if readings:
        body += b', "readings": [%s]' % readings.encode()
    if groups:
        body += b', "groups": [%s]' % ",".join(groups).encode()
    return body + b"}"


GROUP = '{"device": "ups-01", "ts": 5, "points": ["battery_pct", "load_pct"], "values": [87.5, 40]}'


def test_a_group_is_its_readings() -> None:
    message = wire.decode(wire.Telemetry, _grouped(
        GROUP, '{"device": "ups-01", "ts": 6, "points": ["on", "name", "v"], '
               '"values": [true, "A", null], "quality": ["good", "uncertain", "bad"]}',
        readings='{"device": "d", "point": "p", "ts": 1, "value": 1}'))
    first, second = message.groups
    assert (first.points, first.values, first.quality) == (
        ["battery_pct", "load_pct"], [87.5, 40], None)
    assert type(first.values[1]) is int and second.values == [True, "A", None]
    assert second.quality == [wire.Quality.GOOD, wire.Quality.UNCERTAIN, wire.Quality.BAD]
    assert wire.reading_count(message.readings, message.groups) == 6
    assert wire.decode(wire.Telemetry, wire.encode(message)) == message


@pytest.mark.parametrize(("raw", "where"), [
    (_grouped(GROUP.replace("[87.5, 40]", "[87.5]")), "groups.0.values: 1 values for 2 points"),
    (_grouped(GROUP, GROUP.replace('"values"', '"quality": ["bad"], "values"')),
     "groups.1.quality: 1 qualities for 2 points"),
    (_grouped(GROUP.replace('["battery_pct", "load_pct"]', "[]").replace("[87.5, 40]", "[]")),
     "groups.0.points"),
    (_grouped(GROUP.replace("battery_pct", "Battery")), "groups.0.points.0"),
    (_grouped(GROUP.replace("87.5", "NaN")), "groups.0.values.0"),
    (_grouped(GROUP.replace("87.5", '"a\\u0000b"')), "groups.0.values.0"),
    (_grouped(GROUP.replace("87.5", "[1]")), "groups.0.values.0"),
    (_grouped(GROUP.replace('"values"', '"quality": ["good", "great"], "values"')),
     "groups.0.quality.1"),
    (_grouped(GROUP.replace('"ts": 5', '"ts": -5')), "groups.0.ts"),
    (_grouped(GROUP.replace('"ts": 5', '"time": 5')), "groups.0.ts"),
    (_grouped(GROUP.replace('"ts": 5', '"ts": 5, "colour": 1')), "groups.0.colour"),
    (_grouped(), "readings or groups is required"),
    (_grouped(GROUP).replace(b'"groups": [', b'"readings": [], "groups": ['), "readings"),
    (_grouped(GROUP).replace(b'"groups": [' + GROUP.encode() + b"]", b'"groups": []'),
     "groups"),
])
def test_a_bad_group_says_where(raw: bytes, where: str) -> None:
    with pytest.raises(WireError) as info:
        wire.decode(wire.Telemetry, raw)
    assert info.value.context["reason"] == "schema" and where in info.value.detail


def test_groups_count_towards_the_batch_limit() -> None:
    names = ", ".join(f'"p{i}"' for i in range(5000))
    values = ", ".join("1" for _ in range(5000))
    group = f'{{"device": "d", "ts": 1, "points": [{names}], "values": [{values}]}}'
    assert wire.decode(wire.Telemetry, _grouped(group, group))  # 10,000: the limit
    with pytest.raises(WireError) as info:
        wire.decode(wire.Telemetry, _grouped(
            group, group, readings='{"device": "d", "point": "p", "ts": 1, "value": 1}'))
    assert "10001 readings in one batch" in info.value.detail
