"""CPU per stage of the agent's Modbus path, per 120-point poll of bench/agent.py's meter
(`python -m bench.agent_stages`): block decoding against the point-by-point path, the batch
JSON from blocks against single readings, the SQLite append and the uplink's publish of a
live batch (a private Mosquitto, as bench/agent.py). time.process_time, so the figures hold
on a shared machine better than wall times; each value is seen twice, as in the bench (polls
every 0.5 s, simulated values change every second)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import tempfile
import time
import timeit
from pathlib import Path

from bench.agent import GATEWAY, Env, meter_profile
from cityops import wire
from edge_agents.agent import encode_readings
from edge_agents.config import AgentConfig
from edge_agents.drivers.modbus.codec import encode_value, registers_to_bytes
from edge_agents.drivers.modbus.config import ModbusEndpoint
from edge_agents.drivers.modbus.driver import ModbusConnection, ModbusDriver
from edge_agents.points import Reading
from edge_agents.profiles import parse_profile
from edge_agents.queue import LocalQueue
from edge_agents.readings import ReadingBlock, encode_batch, encode_grouped
from edge_agents.uplink import Uplink

BATCHES = 300
clock = time.process_time


def _driver() -> ModbusDriver:
    profile = parse_profile(meter_profile(), "bench-meter")
    return ModbusDriver("m1", profile, ModbusEndpoint(host="127.0.0.1", port=1),
                        ModbusConnection("127.0.0.1", 1, 1.0))


def _words(driver: ModbusDriver, rng: random.Random) -> list[int]:
    words = [rng.randint(4000, 6000) for _ in range(160)]
    order = driver.profile.points[80].address.order
    for i in range(20):
        words[80 + 2 * i:82 + 2 * i] = encode_value(230 + rng.random(), "float32", order)
    return words


def decoding() -> list[ReadingBlock]:
    driver, rng = _driver(), random.Random(21)
    polls = itertools.cycle([w for w in (_words(driver, rng) for _ in range(2000))
                             for _ in range(2)])

    def blocks() -> ReadingBlock:
        words, readings = next(polls), ReadingBlock("m1")
        for block, decoder, layout in driver._plan:
            readings.add(layout, 1764000000000,
                         *decoder.decode(words[block.start:block.start + block.count]))
        return readings

    def point_by_point() -> list[Reading]:
        words, out = next(polls), []
        for block, _, _ in driver._plan:
            data = registers_to_bytes(words[block.start:block.start + block.count])
            for index, rel in block.members:
                name = driver.profile.points[index].name
                value, quality = driver._value_of[name](data, 2 * rel)
                out.append(Reading("m1", name, 1764000000000, value, quality))
        return out

    for name, fn in (("block decoding", blocks), ("point by point + Reading", point_by_point)):
        print(f"{name}: {timeit.timeit(fn, number=4000, timer=clock) / 4000 * 1e6:.1f} us")
    polls8 = [blocks() for _ in range(8)]
    singles = [r for poll in polls8 for r in poll]
    for name, fn in (("batch JSON from blocks, grouped", lambda: encode_grouped(polls8)),
                     ("batch JSON from blocks, readings", lambda: encode_batch(polls8)),
                     ("batch JSON from Readings", lambda: encode_readings(singles))):
        print(f"{name}: {timeit.timeit(fn, number=300, timer=clock) / 300 / 8 * 1e6:.1f} us")
    return polls8


async def queue_and_uplink(batch: bytes, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        env = Env(Path(tmp))
        try:
            queue = LocalQueue(Path(tmp) / "q.db", 1 << 30)
            await queue.open()
            config = AgentConfig.model_validate({
                "gateway": GATEWAY, "broker": {"url": env.url, "password_env": "BENCH_PW"},
                "queue": {"path": str(Path(tmp) / "q.db")}})
            os.environ["BENCH_PW"] = env.password
            c0 = clock()
            for _ in range(BATCHES):
                await queue.append(batch, count)
            append = (clock() - c0) / BATCHES
            uplink = Uplink(config, queue, lambda state: wire.Status(state=state))
            task = asyncio.create_task(uplink.run())
            await asyncio.wait_for(uplink.connected.wait(), 30)
            await _until(lambda: uplink.published_batches >= BATCHES)  # the backlog first
            c0, sent = clock(), uplink.published_batches
            for _ in range(BATCHES):  # then live batches, as the recorder makes them
                await queue.append(batch, count)
                uplink.new_data.set()
                await asyncio.sleep(0.002)
            await _until(lambda: uplink.published_batches >= sent + BATCHES)
            both = (clock() - c0) / BATCHES
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await queue.close()
        finally:
            env.close()
    per = count / 120
    print(f"SQLite append of a {count}-reading batch ({len(batch)} bytes): {append * 1e6:.0f} us"
          f" ({append / per * 1e6:.0f} per poll)")
    print(f"uplink publish of a live batch: {(both - append) * 1e6:.0f} us "
          f"({(both - append) / per * 1e6:.0f} per poll)")


async def _until(check, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:  # noqa: ASYNC110 - a bench's poll
        await asyncio.sleep(0.01)


def cli() -> None:
    print("CPU per 120-point poll of the bench meter:")
    polls = decoding()
    for form, encode in (("grouped", encode_grouped), ("readings", encode_batch)):
        print(f"{form} form:")
        asyncio.run(queue_and_uplink(encode(polls), sum(len(p) for p in polls)))


if __name__ == "__main__":
    cli()
