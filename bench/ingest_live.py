"""The live half of `make bench-ingest` (bench/ingest.py): messages published while the worker
runs, by `mosquitto_pub` on the same cores: the live maximum and the paced latency run."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import psycopg

from cityops import wire

if TYPE_CHECKING:
    import paho.mqtt.client as paho

    from bench.ingest import Rig


# the telemetry form of every message the ingest benches publish (bench/ingest.py --form):
# by default what the agent sends, groups (issue #21); `readings` for the list form
FORMS = ("grouped", "readings")
form = {"telemetry": "grouped"}


def payload(stream: str, seq: int, names: list[tuple[str, str]], ts: int) -> bytes:
    """One message of these (device, point) readings at one time, in the bench's form: as
    groups, one per run of the same device."""
    value = seq * 0.5
    if form["telemetry"] == "readings":
        return orjson.dumps({"stream": stream, "seq": seq, "readings": [
            {"device": d, "point": p, "ts": ts, "value": value} for d, p in names]})
    groups: list[dict] = []
    for device, point in names:
        if not groups or groups[-1]["device"] != device:
            groups.append({"device": device, "ts": ts, "points": [], "values": []})
        groups[-1]["points"].append(point)
        groups[-1]["values"].append(value)
    return orjson.dumps({"stream": stream, "seq": seq, "groups": groups})


class Templates:
    """Messages made by byte substitution, so that the paced publisher (which shares the
    machine with the worker) spends microseconds, not a JSON encoding, per message."""

    def __init__(self, stream: str, groups: list[list[tuple[str, str]]]) -> None:
        self.groups = [payload(stream, 999_999_999, names, 8_888_888_888_888).replace(
            b"499999999.5", b"1.5") for names in groups]

    def make(self, seq: int, ts: int) -> bytes:
        body = self.groups[seq % len(self.groups)]
        return body.replace(b"999999999", str(seq).encode(), 1).replace(
            b"8888888888888", str(ts).encode())


class LinePublisher:
    """mosquitto_pub -l (C, libmosquitto) fed one message per line: the paced run's
    publisher costs the shared CPU far less than a Python MQTT client would."""

    def __init__(self, port: int, gateway: str, password: str) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5",
             "-q", "1", "-u", gateway, "-P", password,
             "-i", wire.gateway_client_id(gateway), "-l",
             "-t", wire.telemetry_topic(gateway)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            bufsize=0)

    def publish(self, _topic: str, payload: bytes, qos: int = 1) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(payload + b"\n")

    def loop_stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)

    def disconnect(self) -> None:
        pass


def live_publisher(
    rig: Rig, stream: str, per_message: int,
) -> tuple[LinePublisher | paho.Client, Templates]:
    """mosquitto_pub (a Python client where it is missing) and messages covering every point."""
    client = (LinePublisher(rig.broker.port, rig.gateway, rig.gateway_password)
              if shutil.which("mosquitto_pub") else rig.publisher())
    return client, covering(stream, rig.point_names, per_message)


def covering(stream: str, point_names: list[tuple[str, str]], per_message: int) -> Templates:
    """Templates of `per_message` readings that together cover every point."""
    names = point_names * 2
    return Templates(stream, [names[i:i + per_message]
                              for i in range(0, len(point_names), per_message)])


def keeps_up(rig: Rig, rate_rps: float, seconds: float) -> bool:
    """Whether the whole chain (publisher, broker, worker, database, all on these cores)
    sustains `rate_rps` with 50-reading messages: after `seconds` of paced publishing, less
    than half a second's worth of readings is still uncommitted. Returns once all is
    committed, so the next step starts from an empty pipeline."""
    per_message = 50
    client, templates = live_publisher(rig, str(uuid.uuid4()), per_message)
    already, seq, interval = rig.stored(), 0, per_message / rate_rps
    started = time.perf_counter()
    while (now := time.perf_counter()) - started < seconds:
        due = int((now - started) / interval) + 1
        while seq < due:
            seq += 1
            client.publish(wire.telemetry_topic(rig.gateway),
                           templates.make(seq, int(time.time() * 1000)), qos=1)
        time.sleep(0.002)
    behind = seq * per_message - (rig.stored() - already)
    client.loop_stop()
    client.disconnect()
    deadline = time.monotonic() + 300
    while rig.stored() - already < seq * per_message and time.monotonic() < deadline:
        time.sleep(0.1)
    return behind < rate_rps / 2


def live_max(rig: Rig, drain_rps: float, step_s: float, steps: int = 4) -> float:
    """The highest rate the chain sustains with the publisher live, found by bisection
    between a quarter of the drain rate and the drain rate (which has no publisher)."""
    low, high = drain_rps / 4, drain_rps
    for _ in range(steps):
        middle = (low + high) / 2
        ok = keeps_up(rig, middle, step_s)
        print(f"  {middle:10,.0f} readings/s live: {'sustained' if ok else 'fell behind'}")
        low, high = (middle, high) if ok else (low, middle)
    return low


def paced_latency(rig: Rig, rate_rps: float, seconds: float, trace: Path | None = None) -> dict:
    """Publish 50-reading messages at `rate_rps` for `seconds`; latency publish -> visible."""
    stream = str(uuid.uuid4())
    per_message, interval = 50, 50 / rate_rps
    client, templates = live_publisher(rig, stream, per_message)
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(rig.url, autocommit=True) as conn:
            low = 1
            while not stop.is_set() or low <= len(sent):
                rows = conn.execute("SELECT seq FROM ingested_batches WHERE gateway_id = %s"
                                    " AND stream = %s AND seq >= %s",
                                    (rig.gateway, stream, low)).fetchall()
                now = time.time()
                for (seq,) in rows:
                    seen.setdefault(seq, now)
                while low in seen:
                    low += 1
                if stop.is_set() and time.time() - stop_time[0] > 10:
                    break
                time.sleep(0.003)

    stop_time = [0.0]
    poller = threading.Thread(target=poll)
    poller.start()
    rss: list[tuple[float, float]] = []
    started, seq, next_rss = time.time(), 0, 0.0
    while (now := time.time()) - started < seconds:
        seq += 1
        sent[seq] = time.time()
        client.publish(wire.telemetry_topic(rig.gateway),
                       templates.make(seq, int(sent[seq] * 1000)), qos=1)
        if now >= next_rss:
            rss.append((now - started, rig.rss_mb()))
            next_rss = now + 1.0
        delay = started + seq * interval - time.time()
        if delay > 0:
            time.sleep(delay)
    stop_time[0] = time.time()
    stop.set()
    poller.join()
    client.loop_stop()
    client.disconnect()
    warm = started + min(5.0, seconds / 5)
    if trace is not None:  # one line per message: seconds into the run, latency in ms
        trace.write_text("".join(f"{sent[s] - started:.3f} {(seen[s] - sent[s]) * 1000:.1f}\n"
                                 for s in sent if s in seen))
    lat = sorted((seen[s] - sent[s]) * 1000 for s in sent if s in seen and sent[s] >= warm)
    if not lat:
        raise RuntimeError("no message was seen committed")
    steady = [m for t, m in rss if t >= min(5.0, seconds / 5)]
    return {"p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99)],
            "messages": len(sent), "unseen": len(sent) - len(seen),
            "rss_first_mb": steady[0] if steady else None,
            "rss_last_mb": steady[-1] if steady else None,
            "rss_max_mb": max(steady) if steady else None}
