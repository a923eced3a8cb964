"""The decoder's fast path returns exactly what the validating path returns, or steps aside."""

from __future__ import annotations

import orjson
import pytest

from ingestion.decode import Decoder, PointRef

TOPIC = "cityops/v1/gw1/telemetry"
STREAM = "0b9d7a52-3f0e-4a59-9d57-0c1f3e0f4a11"
POINTS = {
    ("ups-1", "volts"): PointRef(1, "gw1", False),
    ("ups-1", "label"): PointRef(2, "gw1", True),
    ("other-1", "volts"): PointRef(3, "gw2", False),
}
NOW_S = 1763892000.0  # the decoder's clock: readings at 1763892000123 are current


def decoder() -> Decoder:
    return Decoder(dict(POINTS), clock=lambda: NOW_S)


def reading(**over):
    return {"device": "ups-1", "point": "volts", "ts": 1763892000123, "value": 230.5} | over


def message(*readings, **over):
    return orjson.dumps({"stream": STREAM, "seq": 7, "readings": list(readings)} | over)


CASES = [
    message(reading()),
    message(reading(value=1), reading(value=True), reading(value=None, quality="bad")),
    message(reading(quality="uncertain"), reading(point="label", value="UPS-A")),
    message(reading(point="label", value=12), reading(point="label", value=None)),
    message(reading(value="text for a number")),          # dead letter: text in numeric
    message(reading(point="nope")),                       # dead letter: unknown point
    message(reading(device="other-1")),                   # dead letter: another gateway's
    message(reading(ts=1.5e12)),                          # lax int: only the model decides
    message(reading(ts=-1)),
    message(reading(quality="great")),
    message(reading(extra=1)),
    message({k: v for k, v in reading().items() if k != "ts"} | {"extra": 1}),  # 4 keys
    message({k: v for k, v in reading().items() if k != "value"}),
    message(reading(quality="good", colour=1)),
    message(reading(), stream=STREAM.upper()),            # non-canonical uuid: model path
    message(reading(), seq=-1),
    message(reading(), seq=7.0),
    message(),
    message(reading(), colour="red"),
    message(reading(device=["x"])),
    message(reading(quality=["good"])),
    b"[1, 2]",
    b"{not json",
    # issue #22: ranges, non-finite numbers, times nobody can trust, duplicate keys
    message(reading(), seq=2**63),                        # beyond bigint: whole message
    message(reading(), seq=2**63 - 1),
    message(reading(value=2**64 - 1), reading(value=-(2**63))),
    message(reading(value=1)).replace(b'"value":1', b'"value":%d' % 2**70),  # orjson: a float
    message(reading(value=1)).replace(b'"value":1', b'"value":%d' % 10**400),
    message(reading(), reading(value=float("inf"))).replace(b"null", b"1e400"),
    message(reading(), reading(value=float("nan"))).replace(b"null", b"NaN"),
    message(reading(), reading(ts=0)),                    # 1970: that reading only
    message(reading(), reading(ts=32503680000000)),       # the year 3000
    message(reading(ts=1763892000123 + 299_000)),         # ahead, inside the window
    message(reading(ts=1763892000123 - 29 * 86_400_000)),  # late, inside the window
    message(reading(point="label", value="a\u0000b")),    # NUL: text cannot hold it
    message(reading(point="label", value='say "hi"')),    # escaped quotes: validating path
    message(reading(), reading(point="nope"), reading(ts=-5), reading(ts=1)),
    message(reading()).replace(b'"value"', b'"value":1,"value"'),
    message(reading()).replace(b'"seq"', b'"seq":1,"seq"'),
    message(reading()).replace(b'"value"', b'"v\\u0061lue":1,"value"'),
]


def group(**over):
    return {"device": "ups-1", "ts": 1763892000123, "points": ["volts", "label"],
            "values": [230.5, "UPS-A"]} | over


def grouped(*groups, **over):
    return orjson.dumps({"stream": STREAM, "seq": 7, "groups": list(groups)} | over)


# issue #21: the grouped form takes the same paths, with the same outcome as its readings
CASES += [
    grouped(group()),
    grouped(group(), group(points=["volts"], values=[None], quality=["bad"]),
            readings=[reading()]),
    grouped(group(quality=["uncertain", "good"], values=[1, 7])),
    grouped(group(values=["text", "x"])),                 # dead letter: text in numeric
    grouped(group(points=["volts", "nope"])),             # dead letter: unknown point
    grouped(group(device="other-1", points=["volts"], values=[1])),
    grouped(group(ts=0)),                                 # out of window: the group's readings
    grouped(group(values=[1])),                           # dead letter: lengths differ
    grouped(group(quality=["good"])),
    grouped(group(quality=["good", "great"])),
    grouped(group(quality=None)),
    grouped(group(points=[], values=[])),
    grouped(group(points=["volts", 1])),
    grouped(group(points=["volts", ["x"]])),
    grouped(group(colour=1)),
    grouped({k: v for k, v in group().items() if k != "ts"} | {"colour": 1}),
    grouped(group(ts=1.5e12)),
    grouped(group(values=[float("nan"), 1])).replace(b"null", b"NaN"),
    grouped(group(values=[1, "a\u0000b"])),
    grouped(group(values=[1, 'say "hi"'])),
    grouped(),
    grouped(group(), readings=[]),
    grouped(group(), group(ts=0), group(values=[1]), group(points=["nope", "volts"])),
    grouped(group()).replace(b'"values"', b'"values":[1,2],"values"'),
    grouped(group()).replace(b'"points"', b'"p\\u006fints":[],"points"'),
]


@pytest.mark.parametrize("payload", CASES)
def test_fast_path_agrees_with_the_model(payload: bytes) -> None:
    fast, slow = decoder(), decoder()
    slow._fast = lambda *_: None  # type: ignore[method-assign]
    got, want = fast.decode(TOPIC, payload), slow.decode(TOPIC, payload)
    assert (got[0] and vars(got[0])) == (want[0] and vars(want[0]))
    assert [(d.reason, d.detail) for d in got[1]] == [(d.reason, d.detail) for d in want[1]]


def test_fast_path_takes_the_common_case() -> None:
    lo, hi = decoder().window()
    assert decoder()._fast("gw1", CASES[0], lo, hi) is not None
    assert decoder()._fast("gw1", CASES[4], lo, hi) is None
    for payload in (grouped(group()), grouped(group(values=[None, None], quality=["bad"] * 2),
                                              readings=[reading()])):
        assert decoder()._fast("gw1", payload, lo, hi) is not None


def outcome(payload: bytes) -> tuple[int, dict[str, str]]:
    batch, dead = decoder().decode(TOPIC, payload)
    return (batch.count if batch else -1), {d.reason: d.detail for d in dead}


def test_one_bad_reading_costs_only_itself() -> None:
    """Issue #22: the good readings of a batch are kept, each bad one is dead-lettered with
    its reason and the field, under the batch's own key."""
    payload = message(reading(), reading(ts=0), reading(value=1), reading(point="nope"),
                      reading(ts=32503680000000)).replace(b'"value":1', b'"value":1e400')
    batch, dead = decoder().decode(TOPIC, payload)
    assert batch is not None and batch.key == ("gw1", STREAM, 7) and batch.count == 1
    reasons = {d.reason: d for d in dead}
    assert set(reasons) == {"out_of_window", "schema", "unknown_point"}
    assert "readings.2.value" in reasons["schema"].detail
    assert "readings.1.ts" in reasons["out_of_window"].detail
    assert "readings.4.ts" in reasons["out_of_window"].detail
    kept = orjson.loads(reasons["out_of_window"].payload)
    assert (kept["stream"], kept["seq"], [r["ts"] for r in kept["readings"]]) == (
        STREAM, 7, [0, 32503680000000])


@pytest.mark.parametrize(("payload", "reason", "where"), [
    (message(reading(), seq=2**63), "schema", "seq"),
    (message(reading()).replace(b'"seq"', b'"seq":1,"seq"'), "duplicate_key", "seq"),
    (message(reading()).replace(b'"value"', b'"v\\u0061lue":1,"value"'), "duplicate_key",
     "value"),
])
def test_whole_message_refused_with_the_reason(payload: bytes, reason: str, where: str) -> None:
    count, dead = outcome(payload)
    assert count == -1 and list(dead) == [reason] and where in dead[reason]


def test_non_finite_and_nul_never_stored() -> None:
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        count, dead = outcome(message(reading(value=1)).replace(b'"value":1', b'"value":' + raw))
        assert count == 0 and "readings.0.value" in dead["schema"], raw
    count, dead = outcome(message(reading(point="label", value="a\u0000b")))
    assert count == 0 and "readings.0.value" in dead["schema"]


def test_late_data_inside_the_window_is_kept() -> None:
    day_ms = 86_400_000
    fresh = decoder()
    fresh.max_past_ms = 2 * day_ms
    inside = message(reading(ts=1763892000123 - day_ms))
    outside = message(reading(ts=1763892000123 - 3 * day_ms))
    assert fresh.decode(TOPIC, inside)[0].count == 1
    batch, dead = fresh.decode(TOPIC, outside)
    assert batch.count == 0 and [d.reason for d in dead] == ["out_of_window"]


def test_another_deployments_gateway_is_counted_not_dead_lettered() -> None:
    """Issue #13: on a shared broker each deployment receives every gateway's telemetry."""
    seen: list[int] = []
    decoder_ = Decoder(dict(POINTS), clock=lambda: NOW_S, on_foreign=lambda: seen.append(1))
    assert decoder_.decode("cityops/v1/gw-elsewhere/telemetry", message(reading())) == (None, [])
    assert decoder_.decode("cityops/v1/gw-elsewhere/telemetry", b"{oops") == (None, [])
    assert len(seen) == 2
    decoder_.points = {**POINTS, ("x-1", "v"): PointRef(9, "gw-elsewhere", False)}
    assert decoder_.decode("cityops/v1/gw-elsewhere/telemetry", message(reading()))[1]


def test_a_detail_never_holds_nul() -> None:
    """The dead letter's detail quotes the payload's key: stored as text, it must not hold NUL,
    or PostgreSQL would refuse the flush holding it."""
    for payload in (message(reading(**{"\x00": 1})), message(reading(), **{"\x00": 1})):
        _count, dead = outcome(payload)
        assert dead and all("\x00" not in d for d in dead.values())


def test_a_group_stores_what_its_readings_store() -> None:
    as_list = message(reading(value=230.5), reading(point="label", value="UPS-A"),
                      reading(value=None, quality="bad", ts=1763892000124),
                      reading(point="label", value=3, quality="uncertain", ts=1763892000124))
    as_groups = grouped(group(), group(ts=1763892000124, values=[None, 3],
                                       quality=["bad", "uncertain"]))
    for validating in (False, True):
        listed, grouped_ = decoder(), decoder()
        if validating:
            listed._fast = grouped_._fast = lambda *_: None  # type: ignore[method-assign]
        want, got = listed.decode(TOPIC, as_list), grouped_.decode(TOPIC, as_groups)
        assert vars(got[0]) == vars(want[0]) and got[1] == want[1] == []
        assert got[0].count == 4


def test_a_bad_group_costs_only_itself() -> None:
    payload = grouped(group(), group(values=[1]), group(points=["volts", "nope"]),
                      group(ts=0, points=["volts"], values=[2]))
    batch, dead = decoder().decode(TOPIC, payload)
    assert batch is not None and batch.count == 3  # the first group and volts of the third
    reasons = {d.reason: d for d in dead}
    assert reasons["schema"].detail == "groups.1.values: 1 values for 2 points"
    assert orjson.loads(reasons["schema"].payload) == {
        "stream": STREAM, "seq": 7, "groups": [group(values=[1])]}
    assert reasons["unknown_point"].detail == "ups-1/nope: unknown point"
    assert orjson.loads(reasons["unknown_point"].payload)["readings"] == [{
        "device": "ups-1", "point": "nope", "ts": 1763892000123, "value": "UPS-A",
        "quality": "good"}]
    assert reasons["out_of_window"].detail.startswith("groups.3.ts: 0 is outside")


def test_a_bad_group_does_not_hide_a_batch_over_the_limit() -> None:
    names = [f"p{i}" for i in range(5000)]
    big = group(points=names, values=[1] * 5000)
    count, dead = outcome(grouped(big, big, group(values=[1])))  # 10,002, the last one bad
    assert count == -1 and "10002 readings in one batch" in dead["schema"]
    count, dead = outcome(grouped(big, group(values=[1])))
    assert count == 0 and list(dead) == ["schema", "unknown_point"]  # p0... not registered
