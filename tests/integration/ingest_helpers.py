"""Helpers for the ingestion tests: register devices directly, publish telemetry as a gateway,
read counts and metrics back."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import orjson
import paho.mqtt.client as paho
import psycopg

from cityops import wire
from ingestion import rollups
from tests.conftest import BrokerFixture
from tests.helpers import free_port


def register(database_url: str, gateway: str, points: dict[str, list[str]],
             profile: str = "test-sensor") -> dict[tuple[str, str], int]:
    """Gateway, profile, devices and float points; returns (device, point) -> point id."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute("INSERT INTO gateways (id) VALUES (%s) ON CONFLICT DO NOTHING", (gateway,))
        conn.execute(
            "INSERT INTO profiles (id, protocol, category, body) VALUES (%s, 'mqtt', 'test', '{}')"
            " ON CONFLICT DO NOTHING", (profile,))
        ids = {}
        for device, names in points.items():
            conn.execute(
                "INSERT INTO devices (id, gateway_id, profile_id) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING", (device, gateway, profile))
            for name in names:
                row = conn.execute(
                    "INSERT INTO points (device_id, name, data_type) VALUES (%s, %s, 'float32')"
                    " ON CONFLICT (device_id, name) DO UPDATE SET data_type = 'float32'"
                    " RETURNING id", (device, name)).fetchone()
                ids[(device, name)] = row[0]
    return ids


def in_a_department(database_url: str, gateway: str) -> tuple[str, str]:
    """Two new departments: the gateway's devices in the first, the second for an outsider."""
    dept, other = f"dept-{uuid.uuid4().hex[:8]}", f"dept-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        for d in (dept, other):
            conn.execute("INSERT INTO departments (id, name) VALUES (%s, %s)", (d, d))
        conn.execute("UPDATE devices SET department_id = %s WHERE gateway_id = %s",
                     (dept, gateway))
    return dept, other


def roll_up(database_url: str) -> None:
    """One rollup refresh, as the ingest worker runs it."""
    async def refresh() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await rollups.refresh(conn)
    asyncio.run(refresh())


def store_and_roll(database_url: str, point: int, start: datetime, minutes: int,
                   seconds: Iterable[int] = (5,),
                   value: Callable[[int, int], float] = lambda m, s: float(m)) -> None:
    """Readings at these seconds of each of `minutes` minutes (value of minute and second),
    their minutes marked dirty as ingestion marks them, then rolled up."""
    with psycopg.connect(database_url) as conn:
        with conn.cursor().copy("COPY readings (time, point_id, value) FROM STDIN") as copy:
            for m in range(minutes):
                for s in seconds:
                    copy.write_row((start + timedelta(minutes=m, seconds=s), point, value(m, s)))
        conn.execute("INSERT INTO rollup_dirty SELECT generate_series(%s::timestamptz, %s,"
                     " interval '1 minute')", (start, start + timedelta(minutes=minutes - 1)))
    roll_up(database_url)


def telemetry(stream: str, seq: int, readings: Iterable[tuple[str, str, int, float]]) -> bytes:
    return orjson.dumps({"stream": stream, "seq": seq, "readings": [
        {"device": d, "point": p, "ts": ts, "value": v} for d, p, ts, v in readings]})


class Gateway:
    """A gateway's MQTT session for publishing test telemetry (QoS 1, PUBACK awaited)."""

    def __init__(self, broker: BrokerFixture, gateway: str, password: str) -> None:
        self.gateway = gateway
        self.stream = str(uuid.uuid4())
        self.seq = 0
        # the one client id the broker lets this gateway's account use
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=wire.gateway_client_id(gateway), protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.username_pw_set(gateway, password)
        self.client.connect("127.0.0.1", broker.broker.port)
        self.client.loop_start()

    def send(self, readings: list[tuple[str, str, int, float]]) -> int:
        self.seq += 1
        self.publish_raw(telemetry(self.stream, self.seq, readings))
        return self.seq

    def publish_raw(self, payload: bytes) -> None:
        self.client.publish(wire.telemetry_topic(self.gateway), payload, qos=1).wait_for_publish(10)

    def send_many(self, payloads: list[bytes]) -> None:
        infos = [self.client.publish(wire.telemetry_topic(self.gateway), p, qos=1)
                 for p in payloads]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def scalar(database_url: str, sql: str, params: tuple = ()) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def readings_of(database_url: str, point_ids: list[int]) -> tuple[int, int]:
    """(rows, distinct (time, point) pairs) for these points."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT (time, point_id)) FROM readings"
            " WHERE point_id = ANY(%s)", (point_ids,)).fetchone()


def metric(port: int, name: str) -> float:
    """One sample of a Prometheus text endpoint (0 when absent)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def two_free_ports() -> int:
    """A port p with p + 1 free too (workers in slots 1 and 2 serve metrics on p and p + 1)."""
    for _ in range(50):
        p = free_port()
        if p < 65535:
            try:
                import socket

                with socket.socket() as s:
                    s.bind(("127.0.0.1", p + 1))
                return p
            except OSError:
                continue
    raise RuntimeError("no two consecutive free ports")


def now_ms() -> int:
    return int(time.time() * 1000)
