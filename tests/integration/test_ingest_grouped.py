"""Issue #21 against a real worker, Mosquitto and PostgreSQL: a telemetry batch in the
grouped form (one device at one time, column-wise) is stored exactly as the same readings in
list form, once per batch key; a bad group is dead-lettered with its reason and field, and
costs only itself."""

from __future__ import annotations

import uuid

import orjson
import psycopg

from tests.conftest import BrokerFixture, Processes
from tests.helpers import wait_for
from tests.integration.ingest_helpers import Gateway, now_ms, register, scalar

POINTS = ["a", "b", "c"]


def rows(database_url: str, ids: dict, device: str) -> list[tuple]:
    """(point, time, value, quality) of one device's readings, in order."""
    names = {ids[(device, p)]: p for p in POINTS}
    with psycopg.connect(database_url) as conn:
        got = conn.execute("SELECT point_id, time, value, quality FROM readings"
                           " WHERE point_id = ANY(%s)", (list(names),)).fetchall()
    return sorted((names[pid], t, v, q) for pid, t, v, q in got)


def test_groups_stored_as_their_readings_and_a_bad_group_dead_lettered(
    processes: Processes, broker: BrokerFixture, database_url: str
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:6]}"
    listed, grouped = f"{gw}-l", f"{gw}-g"
    ids = register(database_url, gw, {listed: POINTS, grouped: POINTS})
    sender = Gateway(broker, gw, broker.add_gateway(gw))
    processes.start("ingest", "ingest")
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    t = now_ms() - 60_000
    polls = [(t, [1.5, 2, None], None), (t + 1000, [3.25, -4, 7], ["good", "uncertain", "bad"])]
    list_form = {"stream": sender.stream, "seq": 1, "readings": [
        {"device": listed, "point": p, "ts": ts, "value": v, "quality": (q or ["good"] * 3)[i]}
        for ts, values, q in polls for i, (p, v) in enumerate(zip(POINTS, values, strict=True))]}
    list_form["readings"][2]["quality"] = "bad"  # the null of the first poll
    groups = [{"device": grouped, "ts": ts, "points": POINTS, "values": values,
               **({"quality": q} if q else {})} for ts, values, q in polls]
    groups[0]["quality"] = ["good", "good", "bad"]
    bad_group = {"device": grouped, "ts": t + 2000, "points": POINTS, "values": [1, 2]}
    sender.send_many([
        orjson.dumps(list_form),
        orjson.dumps({"stream": sender.stream, "seq": 2, "groups": groups}),
        orjson.dumps({"stream": sender.stream, "seq": 2, "groups": groups}),  # a resend
        orjson.dumps({"stream": sender.stream, "seq": 3, "groups": [
            bad_group, {"device": grouped, "ts": t + 3000, "points": ["a"], "values": [9]}]}),
    ])
    wait_for(lambda: len(rows(database_url, ids, grouped)) == 7, what="grouped readings stored")
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM ingested_batches"
                            " WHERE gateway_id = %s", (gw,)) == 3, what="three batch keys")
    listed_rows, grouped_rows = rows(database_url, ids, listed), rows(database_url, ids, grouped)
    last = next(r for r in grouped_rows if r[2] == 9.0)  # the good group of seq 3
    assert last[0] == "a" and round(last[1].timestamp() * 1000) == t + 3000 and last[3] == 0
    assert len(listed_rows) == 6
    assert sorted([*listed_rows, last]) == grouped_rows  # the resend stored nothing twice
    assert {(v, q) for _, _, v, q in grouped_rows} >= {(None, 2), (-4.0, 1), (7.0, 2)}
    with psycopg.connect(database_url) as conn:
        dead = conn.execute("SELECT reason, detail, payload FROM dead_letters WHERE topic = %s",
                            (f"cityops/v1/{gw}/telemetry",)).fetchall()
    assert [(r, d) for r, d, _ in dead] == [("schema", "groups.0.values: 2 values for 3 points")]
    assert orjson.loads(bytes(dead[0][2])) == {
        "stream": sender.stream, "seq": 3, "groups": [bad_group]}
    sender.close()
