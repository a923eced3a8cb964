"""The latest-value table (readings_latest, migration 090): kept by the store's transaction,
never moved back by late or out-of-order batches, from two writers at once; kept by a real
`cityops ingest` worker; read by the API's latest routes, paged by keyset."""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from datetime import UTC, datetime

import psycopg
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from ingestion.decode import DecodedBatch
from ingestion.sink import Sink
from tests.api_kit import api_settings, bearer, ok, unique
from tests.conftest import BrokerFixture, Processes
from tests.helpers import wait_for
from tests.integration.ingest_helpers import Gateway, now_ms, register

T0 = 1_780_000_000_000  # ms; any fixed instant: the sink takes what it is given


def latest(database_url: str, ids: list[int]) -> dict[int, tuple]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT point_id, time, value, text, quality FROM readings_latest"
                            " WHERE point_id = ANY(%s)", (ids,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def _two_writers(url: str, points: list[int], text_point: int) -> None:
    """Two sinks (two workers' connections) store interleaved batches at once: one carries
    each point's newest readings out of order within the batch, the other late ones."""
    sinks = [Sink(url), Sink(url)]
    for sink in sinks:
        await sink.connect()
    stream = str(uuid.uuid4())
    try:
        for round_ in range(5):
            newer = DecodedBatch("gw", stream, 2 * round_ + 1, numeric=[
                (T0 + 10_000 * round_ + 5, p, float(round_ * 100 + 5), 0) for p in points] + [
                (T0 + 10_000 * round_ + 1, p, -1.0, 1) for p in points],  # older, after
                text=[(T0 + 10_000 * round_, text_point, f'r{round_} "q" \\ {{,}} NULL', 0)])
            late = DecodedBatch("gw", stream, 2 * round_ + 2, numeric=[
                (T0 - 60_000 + round_, p, -2.0, 2) for p in reversed(points)],
                text=[(T0 - 60_000, text_point, "late", 0)])
            await asyncio.gather(sinks[0].store([newer], []), sinks[1].store([late], []))
        # a resend of an old batch with other contents: its key is known, nothing changes
        resend = DecodedBatch("gw", stream, 1, numeric=[(T0 + 99_000_000, p, 7.0, 0)
                                                        for p in points])
        assert (await sinks[0].store([resend], [])).duplicates == 1
    finally:
        for sink in sinks:
            await sink.close()


def test_late_and_out_of_order_batches_from_two_writers_never_move_latest_back(
    database_url: str,
) -> None:
    gateway = unique("gw")
    ids = register(database_url, gateway, {f"{gateway}-d": [f"p{i}" for i in range(30)]})
    points = sorted(ids.values())
    with psycopg.connect(database_url) as conn:
        text_point = conn.execute(
            "INSERT INTO points (device_id, name, data_type) VALUES (%s, 'state', 'string')"
            " RETURNING id", (f"{gateway}-d",)).fetchone()[0]
        conn.commit()
    asyncio.run(_two_writers(database_url, points, text_point))
    got = latest(database_url, [*points, text_point])
    for p in points:  # the newest of round 4, not the older reading after it, not the late
        assert got[p] == (at(T0 + 40_005), 405.0, None, 0), p
    assert got[text_point] == (at(T0 + 40_000), None, 'r4 "q" \\ {,} NULL', 0)
    # the table says what a search of readings says
    with psycopg.connect(database_url) as conn:
        searched = conn.execute(
            "SELECT DISTINCT ON (point_id) point_id, time, value FROM readings"
            " WHERE point_id = ANY(%s) ORDER BY point_id, time DESC", (points,)).fetchall()
    assert {r[0]: r[1:] for r in searched} == {p: got[p][:2] for p in points}


def test_a_worker_keeps_latest_and_the_api_pages_it_by_keyset(
    processes: Processes, broker: BrokerFixture, database_url: str, settings: Settings,
) -> None:
    gateway = unique("gw")
    password = broker.add_gateway(gateway)
    devices = [f"{gateway}-d{i}" for i in range(5)]
    ids = register(database_url, gateway, {d: ["a", "b"] for d in devices})
    dept = unique("dept")
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES (%s, %s)", (dept, dept))
        conn.execute("UPDATE devices SET department_id = %s WHERE gateway_id = %s",
                     (dept, gateway))
        conn.commit()
    processes.start("ingest", "ingest")
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    sender = Gateway(broker, gateway, password)
    now = now_ms()
    try:
        sender.send([(d, p, now, 1.0) for d in devices for p in ("a", "b")])
        # a gateway draining its queue: older readings after the newer ones
        sender.send([(d, p, now - 120_000, 9.0) for d in devices for p in ("a", "b")])
        sender.send([(devices[0], "a", now + 1, 2.0)])
    finally:
        sender.close()
    wait_for(lambda: latest(database_url, [ids[(devices[0], "a")]]).get(
        ids[(devices[0], "a")], (None, None))[1] == 2.0, what="the newest reading kept")
    wait_for(lambda: len(latest(database_url, list(ids.values()))) == len(ids),
             what="every point kept")
    values = {p: row[1] for p, row in latest(database_url, list(ids.values())).items()}
    assert sorted(values.values()) == [1.0] * 9 + [2.0]  # the late 9.0 never won

    with TestClient(create_app(api_settings(settings, broker))) as client:
        auth = bearer(settings, "viewer", "t-latest-viewer")
        pages, after = [], None
        while True:
            params = {"department": dept, "limit": 2} | ({"after": after} if after else {})
            page = ok(client.get("/v1/readings/latest", params=params, headers=auth))
            pages.append(page)
            after = page["next_after"]
            if after is None:
                break
        assert [len(p["items"]) for p in pages] == [2, 2, 1]
        assert all(p["total"] == 5 for p in pages)
        items = [i for p in pages for i in p["items"]]
        assert [i["device"] for i in items] == devices
        first = {pt["point"]: pt["value"] for pt in items[0]["points"]}
        assert first == {"a": 2.0, "b": 1.0}
        one = ok(client.get(f"/v1/devices/{devices[1]}/latest", headers=auth))
        assert [(pt["point"], pt["value"], pt["quality"]) for pt in one["points"]] == [
            ("a", 1.0, "good"), ("b", 1.0, "good")]
        bad = client.get("/v1/readings/latest", params={"after": "no such/id"}, headers=auth)
        assert bad.status_code == 422 and bad.json()["code"]



def test_pending_latest_values_of_a_killed_worker_are_repaired_at_the_next_start(
    processes: Processes, broker: BrokerFixture, database_url: str,
) -> None:
    """A worker writes readings_latest at most every INGEST_LATEST_EVERY_MS: its first
    store writes, the next ones leave their rows pending; killed (-9) before writing them,
    the next worker's start repairs them from the committed readings."""
    gateway = unique("gw")
    password = broker.add_gateway(gateway)
    device = f"{gateway}-d"
    ids = register(database_url, gateway, {device: ["a", "b"]})
    env = processes.env | {"CITYOPS_INGEST_LATEST_EVERY_MS": "60000"}
    worker = processes.start("ingest-slow", "ingest", env=env)
    # its own start's check done (it would otherwise repair what this test leaves pending)
    wait_for(lambda: all(line in processes.log("ingest-slow")
                         for line in ("subscribed", "readings_latest checked")),
             what="worker subscribed and its check done")
    sender = Gateway(broker, gateway, password)
    now = now_ms()
    points = list(ids.values())

    def stored() -> int:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT count(*) FROM readings WHERE point_id = ANY(%s)",
                                (points,)).fetchone()[0]

    try:
        sender.send([(device, "a", now, 1.0), (device, "b", now, 1.0)])
        wait_for(lambda: len(latest(database_url, points)) == 2, what="the first store")
        sender.send([(device, "a", now + 1000, 2.0), (device, "b", now + 1000, 2.0)])
        wait_for(lambda: stored() == 4, what="the second batch committed")
        # committed, and pending: the worker wrote readings_latest less than a minute ago
        assert {r[1] for r in latest(database_url, points).values()} == {1.0}
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        sender.close()
    processes.start("ingest", "ingest")
    wait_for(lambda: {r[1] for r in latest(database_url, points).values()} == {2.0},
             what="the killed worker's pending values repaired")
    assert re.search(r"readings_latest checked against readings, [1-9]\d* rows moved",
                     processes.log("ingest"))
