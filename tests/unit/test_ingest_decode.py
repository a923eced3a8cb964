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
]


@pytest.mark.parametrize("payload", CASES)
def test_fast_path_agrees_with_the_model(payload: bytes) -> None:
    fast, slow = Decoder(dict(POINTS)), Decoder(dict(POINTS))
    slow._fast = lambda *_: None  # type: ignore[method-assign]
    got, want = fast.decode(TOPIC, payload), slow.decode(TOPIC, payload)
    assert (got[0] and vars(got[0])) == (want[0] and vars(want[0]))
    assert [(d.reason, d.detail) for d in got[1]] == [(d.reason, d.detail) for d in want[1]]


def test_fast_path_takes_the_common_case() -> None:
    decoder = Decoder(dict(POINTS))
    assert decoder._fast("gw1", CASES[0]) is not None
    assert decoder._fast("gw1", CASES[4]) is None
