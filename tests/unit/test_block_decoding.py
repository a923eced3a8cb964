"""A Modbus read block decoded at once (edge_agents/drivers/modbus/block.py) gives exactly what
each point's generic decoding gives (decode_registers, then PointBase.to_engineering in
decimals): same values, same types, NaN as bad; for every type, word order, scale and offset,
overlapping points, strings and bit fields, random words, and an answer cut short. Its
readings (edge_agents/readings.py) encode to the same bytes as single readings, and the
recorder batches them whole, at most batch_max_readings each."""

from __future__ import annotations

import asyncio
import math
import random
import struct

import orjson

from cityops.wire import Quality
from edge_agents.agent import Recorder, encode_readings
from edge_agents.drivers.modbus.block import BlockDecoder
from edge_agents.drivers.modbus.codec import decode_registers
from edge_agents.drivers.modbus.config import ModbusEndpoint, WordOrder
from edge_agents.drivers.modbus.driver import ModbusConnection, ModbusDriver
from edge_agents.points import Reading
from edge_agents.profiles import parse_profile
from edge_agents.readings import Layout, ReadingBlock, encode_batch, telemetry_payload

TYPES = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
SCALES = [(1.0, 0.0), (0.1, 0.0), (0.01, -40.0), (2.5, 273.15), (1 / 3, 0.5), (10.0, 0.0),
          (1e-5, 0.0), (0.001, -0.001)]
WORDS = 64


def _random_profile(rng: random.Random) -> dict:
    points = []
    for n in range(rng.randint(1, 24)):
        data_type = rng.choice([*TYPES, "string", "bit"])
        offset = rng.randint(0, WORDS - 4)  # points may overlap, as devices' maps do
        address = {"table": "holding_register", "offset": offset,
                   "order": rng.choice(list(WordOrder)).value}
        point: dict = {"name": f"p{n}", "data_type": data_type, "address": address}
        if data_type == "string":
            address["length"] = rng.randint(1, 3)
        elif data_type == "bit":
            point["data_type"], address["bit"] = "bool", rng.randint(0, 15)
        else:
            point["scale"], point["offset"] = rng.choice(SCALES)
        points.append(point)
    return {"model": "m", "category": "power", "protocol": "modbus", "points": points}


def _expected(point, words: list[int]) -> tuple[object, Quality]:
    """The generic path, point by point."""
    address = point.address
    count = address.register_count(point.data_type)
    mine = words[address.offset:address.offset + count]
    if len(mine) < count and point.data_type.value != "string":  # a text: what came of it
        return None, Quality.BAD
    raw = decode_registers(mine, point.data_type.value, address.order, address.bit)
    if point.data_type.value in ("string", "bool") or address.bit is not None:
        return raw, Quality.GOOD
    if isinstance(raw, float) and not math.isfinite(raw):
        return None, Quality.BAD
    return point.to_engineering(raw), Quality.GOOD


def _random_words(rng: random.Random) -> list[int]:
    words = [rng.choice([rng.randint(0, 65535), rng.randint(0, 3), 65535])
             for _ in range(WORDS)]
    at = rng.randint(0, WORDS - 2)  # now and then a float32 NaN or infinity somewhere
    words[at:at + 2] = rng.choice([[0x7FC0, 0], [0x7F80, 0], [0xFF80, 0], [0x41C6, 0x6666]])
    return words


def _decoder(profile) -> BlockDecoder:
    driver = ModbusDriver("dev", profile, ModbusEndpoint(host="127.0.0.1", port=1),
                          ModbusConnection("127.0.0.1", 1, 1.0))
    members = [(p, p.address.offset) for p in profile.points]
    return BlockDecoder(members, lambda point: driver._value_of[point.name])


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


def test_a_block_decodes_as_each_point_alone() -> None:
    rng = random.Random(21)
    for _ in range(300):
        profile = parse_profile(_random_profile(rng), "m")
        decoder = _decoder(profile)
        for cut in (WORDS, rng.randint(1, WORDS - 1)):  # whole, then an answer cut short
            words = _random_words(rng)[:cut]
            values, qualities = decoder.decode(words)
            marks = qualities or [Quality.GOOD] * len(values)
            got = dict(zip(decoder.names, zip(values, marks, strict=True), strict=True))
            assert sorted(got) == sorted(p.name for p in profile.points)
            for point in profile.points:
                value, quality = _expected(point, words)
                assert _same(got[point.name][0], value) and got[point.name][1] is quality, \
                    (point, words, got[point.name], value)


def test_an_integer_scaled_exactly_keeps_its_type() -> None:
    profile = parse_profile({"model": "m", "category": "power", "protocol": "modbus", "points": [
        {"name": "a", "data_type": "uint16", "scale": 0.1, "address": {
            "table": "input_register", "offset": 0}},
        {"name": "b", "data_type": "int32", "scale": 0.01, "offset": -40.0, "address": {
            "table": "input_register", "offset": 1, "order": "CDAB"}}]}, "m")
    decoder = _decoder(profile)
    values, qualities = decoder.decode([500, 0xFFF6, 0xFFFF])  # b: raw -10, low word first
    assert qualities is None
    got = dict(zip(decoder.names, values, strict=True))
    assert got == {"a": 50, "b": -40.1} and type(got["a"]) is int


def _block() -> ReadingBlock:
    block = ReadingBlock("m-1")
    block.add(Layout("m-1", ["a", "b", "c"]), 1764000000000, [1, 2.5, True])
    block.add(Layout("m-1", ["d", "e"]), 1764000000007, [None, "配电"],
              [Quality.BAD, Quality.GOOD])
    block.add(Layout("m-1", ["f"]), 1764000000009, [12345678901234567890])
    return block


def test_a_block_is_the_same_json_as_its_readings() -> None:
    block = _block()
    readings = list(block)
    assert readings[3] == Reading("m-1", "d", 1764000000007, None, Quality.BAD)
    assert encode_batch([block]) == encode_readings(readings)
    mixed = encode_batch([block, readings[:2], []])
    assert orjson.loads(mixed) == orjson.loads(encode_readings(readings + readings[:2]))
    for limit in (1, 2, 4, 6, 10):
        parts = block.split(limit)
        assert all(1 <= len(p) <= limit for p in parts)
        assert [r for p in parts for r in p] == readings


class _Queue:
    """Stands in for the SQLite queue: the batches' JSON as appended."""

    def __init__(self) -> None:
        self.batches: list[tuple[list, int]] = []

    async def append(self, readings_json: bytes, count: int) -> int:
        self.batches.append((sent_readings(readings_json), count))
        return len(self.batches)


def sent_readings(stored: bytes) -> list[dict]:
    """The readings of a queued batch as list-form dicts, whatever its form."""
    payload = orjson.loads(telemetry_payload("5b0c6a3e-8f21-4c57-9d3a-2f8e1b7c4d10", 1, stored))
    readings = payload.get("readings", [])
    for g in payload.get("groups", []):
        qualities = g.get("quality", ["good"] * len(g["points"]))
        readings += [{"device": g["device"], "point": p, "ts": g["ts"], "value": v,
                      "quality": q}
                     for p, v, q in zip(g["points"], g["values"], qualities, strict=True)]
    return readings


async def test_the_recorder_keeps_polls_whole_up_to_the_batch_limit() -> None:
    queue = _Queue()
    uplink = type("U", (), {"new_data": asyncio.Event()})()
    recorder = Recorder(queue, uplink, max_readings=4, max_wait_s=1.0)  # type: ignore[arg-type]
    blocks = [_block(), _block()]
    recorder.add(blocks[0])
    recorder.add([Reading("m-2", "x", 1, 1.0)])
    recorder.add(blocks[1])
    await recorder.flush()
    assert recorder.pending == [] and recorder.pending_count == 0
    sizes = [count for _, count in queue.batches]
    assert all(len(json) == count for json, count in queue.batches)
    assert sizes == [4, 3, 4, 2], "a poll larger than a batch split, the rest kept whole"
    sent = sorted((r["device"], r["point"], r["ts"]) for json, _ in queue.batches for r in json)
    expected = sorted((r.device, r.point, r.ts_ms) for item in (blocks[0], [Reading(
        "m-2", "x", 1, 1.0)], blocks[1]) for r in item)
    assert sent == expected  # in a grouped batch, single readings go before the groups


def test_float_bytes_of_the_bench_meter_survive() -> None:
    # a CDAB float32 as meters send it: 24.8, not 24.799999237060547
    profile = parse_profile({"model": "m", "category": "power", "protocol": "modbus", "points": [
        {"name": "v", "data_type": "float32", "address": {
            "table": "input_register", "offset": 0, "order": "CDAB"}}]}, "m")
    high, low = struct.unpack(">HH", struct.pack(">f", 24.8))
    assert _decoder(profile).decode([low, high]) == ([24.8], None)


def test_a_float32_seen_before_decodes_the_same_and_zero_keeps_its_sign() -> None:
    profile = parse_profile({"model": "m", "category": "power", "protocol": "modbus", "points": [
        {"name": f"v{i}", "data_type": "float32", "address": {
            "table": "input_register", "offset": 2 * i}} for i in range(2)]}, "m")
    decoder = _decoder(profile)
    words = list(struct.unpack(">4H", struct.pack(">2f", 24.8, 0.0)))
    assert decoder.decode(words) == decoder.decode(words) == ([24.8, 0.0], None)
    negative = list(struct.unpack(">4H", struct.pack(">2f", 24.8, -0.0)))
    assert str(decoder.decode(negative)[0][1]) == "-0.0"
