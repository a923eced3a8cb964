"""The agent's grouped telemetry (issue #21): a poll (ReadingBlock) goes as one group per
request, and says exactly what its readings in list form say, to the wire model and to
ingestion's decoder; single readings stay in the list; `telemetry_form: readings` keeps the
list form; batches queued before the grouped form still go out as they were."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from cityops import wire
from cityops.errors import ConfigError
from cityops.wire import Quality
from edge_agents.agent import Recorder
from edge_agents.config import load_agent_config
from edge_agents.points import Reading
from edge_agents.readings import (
    Layout,
    ReadingBlock,
    encode_batch,
    encode_grouped,
    telemetry_payload,
)
from ingestion.decode import Decoder, PointRef

STREAM = "5b0c6a3e-8f21-4c57-9d3a-2f8e1b7c4d10"
TS = 1764000000001


def _block(points: int = 3) -> ReadingBlock:
    block = ReadingBlock("m-1")
    block.add(Layout("m-1", [f"p{i}" for i in range(points)]), TS,
              [230.5 + i for i in range(points)])
    block.add(Layout("m-1", ["on", "name", "big", "gone"]), TS + 1,
              [True, 'say "hi"', 12345678901234567890, None],
              [Quality.GOOD, Quality.UNCERTAIN, Quality.GOOD, Quality.BAD])
    block.add(Layout("m-1", ["all_good"]), TS + 2, [1], [Quality.GOOD])
    return block


def _as_readings(message: wire.Telemetry) -> list[tuple]:
    out = [(r.device, r.point, r.ts, r.value, r.quality) for r in message.readings or ()]
    for g in message.groups or ():
        marks = g.quality or [Quality.GOOD] * len(g.points)
        out += [(g.device, p, g.ts, v, q)
                for p, v, q in zip(g.points, g.values, marks, strict=True)]
    return out


def test_a_block_goes_as_groups_that_say_what_its_readings_say() -> None:
    block, single = _block(), [Reading("m-2", "x", TS, 1.5)]
    stored = encode_grouped([block, single, []])
    grouped = wire.decode(wire.Telemetry, telemetry_payload(STREAM, 4, stored))
    listed = wire.decode(wire.Telemetry, telemetry_payload(STREAM, 4, encode_batch([block,
                                                                                     single])))
    assert listed.groups is None and len(grouped.groups) == 3 and len(grouped.readings) == 1
    assert sorted(map(repr, _as_readings(grouped))) == sorted(map(repr, _as_readings(listed)))
    assert grouped.groups[0].quality is None and grouped.groups[2].quality is None
    assert type(grouped.groups[1].values[2]) is int  # 64-bit integers stay integers


def test_without_blocks_and_for_old_queued_batches_the_list_form() -> None:
    single = [Reading("m-2", "x", TS, 1.5)]
    assert encode_grouped([single]) == encode_batch([single])
    old = b'[{"device":"m-2","point":"x","ts":1,"value":1.0,"quality":"good"}]'
    assert orjson.loads(telemetry_payload(STREAM, 9, old)) == {
        "stream": STREAM, "seq": 9, "readings": orjson.loads(old)}


def test_the_grouped_form_is_a_quarter_of_the_bytes_of_a_poll() -> None:
    block = _block(points=120)
    block.parts = block.parts[:1]
    assert len(encode_grouped([block])) < 0.3 * len(encode_batch([block]))


def test_ingestion_stores_the_same_rows_from_either_form() -> None:
    block = _block()
    block.parts[1][2][1] = "UPS-A"  # an escaped quote would take the validating path
    refs = {("m-1", r.point): PointRef(i, "gw1", r.point == "name")
            for i, r in enumerate(block)}
    decoder = Decoder(refs, clock=lambda: TS / 1000)
    rows = {}
    for form, encode in (("grouped", encode_grouped), ("readings", encode_batch)):
        payload = telemetry_payload(STREAM, 1, encode([block]))
        assert decoder._fast("gw1", payload, *decoder.window()) is not None, form
        batch, dead = decoder.decode("cityops/v1/gw1/telemetry", payload)
        rows[form] = (sorted(batch.numeric, key=repr), batch.text, dead)
    assert rows["grouped"] == rows["readings"] and rows["grouped"][2] == []


class _Queue:
    def __init__(self) -> None:
        self.stored: list[bytes] = []

    async def append(self, stored: bytes, count: int) -> int:
        self.stored.append(stored)
        return len(self.stored)


@pytest.mark.parametrize("grouped", [True, False])
def test_the_recorder_writes_the_configured_form(grouped: bool) -> None:
    queue = _Queue()
    uplink = type("U", (), {"new_data": asyncio.Event()})()
    recorder = Recorder(queue, uplink, max_readings=100, max_wait_s=1.0,  # type: ignore[arg-type]
                        grouped=grouped)
    recorder.add(_block())
    asyncio.run(recorder.flush())
    message = orjson.loads(telemetry_payload(STREAM, 1, queue.stored[0]))
    assert set(message) == {"stream", "seq", "groups" if grouped else "readings"}


def test_the_form_is_a_validated_config_field(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    for form, expected in ((None, "grouped"), ("readings", "readings")):
        body = {"gateway": "gw-t", "queue": {"path": "q.db"}}
        path.write_text(orjson.dumps(body | ({"telemetry_form": form} if form else {})).decode())
        assert load_agent_config(path).config.telemetry_form == expected
    path.write_text(orjson.dumps({"gateway": "gw-t", "queue": {"path": "q.db"},
                                  "telemetry_form": "columns"}).decode())
    with pytest.raises(ConfigError, match="telemetry_form"):
        load_agent_config(path)
