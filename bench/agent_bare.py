"""The limit for `make bench-agent`'s Modbus figure: a bare pymodbus client reading the same
registers of the same simulated meters at the same poll interval, in the same process, with
nothing done with the words (no decoding, queue or uplink). Readings are counted as the
agent counts them (120 points per meter poll), so readings per CPU-second of the two compare
what the agent adds to the reading itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from pymodbus.client import AsyncModbusTcpClient

from edge_agents.drivers.modbus.config import MAX_READ_REGISTERS

POINTS, REGISTERS = 120, 160  # bench/agent.py meter_profile(): 120 points in 160 registers


async def _poll(client: AsyncModbusTcpClient, unit: int, poll_s: float,
                counts: list[int], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not stop.is_set():
        ok = True
        for offset in range(0, REGISTERS, MAX_READ_REGISTERS):
            count = min(MAX_READ_REGISTERS, REGISTERS - offset)
            res = await client.read_input_registers(offset, count=count, device_id=unit)
            ok = ok and not res.isError()
        if ok:
            counts[0] += POINTS
        next_at += poll_s
        # a plain sleep, as before: the limit must not pay for a wake-up on stop
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def bare_modbus(ports: list[int], devices: int, poll_s: float, warmup_s: float,
                      duration_s: float) -> dict:
    """Meter n on ports[n % len(ports)], unit n // len(ports) + 1, as the agent's config."""
    clients = [AsyncModbusTcpClient("127.0.0.1", port=port, timeout=5) for port in ports]
    for client in clients:
        await client.connect()
    counts, stop = [0], asyncio.Event()
    tasks = [asyncio.create_task(_poll(clients[n % len(ports)], n // len(ports) + 1, poll_s,
                                       counts, stop)) for n in range(devices)]
    try:
        await asyncio.sleep(warmup_s)
        r0, c0, t0, k0 = counts[0], time.process_time(), time.monotonic(), os.times()
        await asyncio.sleep(duration_s)
        r1, c1, t1, k1 = counts[0], time.process_time(), time.monotonic(), os.times()
    finally:
        # each poller ends after its poll (within a poll interval): a request cancelled in
        # flight had its answer arrive after pymodbus forgot it ("received pdu without a
        # corresponding request", issue #21 item 6: printed by this client, not the agent's)
        stop.set()
        await asyncio.wait(tasks, timeout=poll_s + 10)
        for task in tasks:
            task.cancel()
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
    rps, cores = (r1 - r0) / (t1 - t0), (c1 - c0) / (t1 - t0)
    return {"bare_modbus_rps": round(rps), "bare_modbus_cpu_cores": round(cores, 3),
            "bare_modbus_readings_per_cpu_s": round(rps / max(cores, 1e-9)),
            "bare_modbus_system_share": round((k1.system - k0.system) / max(c1 - c0, 1e-9), 3)}
