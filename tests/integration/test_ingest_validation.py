"""Issue #22 against a real worker, Mosquitto and PostgreSQL: what the database cannot store or
nobody can trust is dead-lettered with its reason, without costing other gateways; the
worker's registry follows deletes and re-registrations while it runs."""

from __future__ import annotations

import uuid

import orjson
import psycopg

from tests.conftest import BrokerFixture, Processes
from tests.helpers import wait_for
from tests.integration.ingest_helpers import Gateway, now_ms, register, scalar, telemetry


def start_worker(processes: Processes) -> Processes:
    processes.start("ingest", "ingest", env=processes.env | {
        "CITYOPS_INGEST_REGISTRY_REFRESH_S": "60"})  # so only a notification explains a reload
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    return processes


def gateway(broker: BrokerFixture, database_url: str) -> tuple[Gateway, dict]:
    gw = f"gw-{uuid.uuid4().hex[:6]}"
    password = broker.add_gateway(gw)
    ids = register(database_url, gw, {f"{gw}-d": ["a", "b"]})
    return Gateway(broker, gw, password), ids


def reading(device: str, point: str, ts: int, value) -> dict:
    return {"device": device, "point": point, "ts": ts, "value": value}


def dead_reasons(database_url: str, gw: str) -> dict[str, list[str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT reason, detail FROM dead_letters WHERE topic = %s",
                            (f"cityops/v1/{gw}/telemetry",)).fetchall()
    out: dict[str, list[str]] = {}
    for reason, detail in rows:
        out.setdefault(reason, []).append(detail)
    return out


def test_bad_numbers_times_and_keys_are_dead_lettered_and_others_unharmed(
    processes: Processes, broker: BrokerFixture, database_url: str
) -> None:
    bad, bad_ids = gateway(broker, database_url)
    good, good_ids = gateway(broker, database_url)
    worker = start_worker(processes)
    dev, t = f"{bad.gateway}-d", now_ms() - 60_000
    stream = str(uuid.uuid4())
    bad.send_many([
        # seq beyond bigint: passed the schema, refused by every transaction holding it
        *(telemetry(stream, 2**63 + i, [(dev, "a", t + i, 1.0)]) for i in range(5)),
        # one good reading among non-finite values and times nobody can trust
        telemetry(stream, 1, [(dev, "a", t, 5.0), (dev, "b", t, 1.0), (dev, "a", 1000, 2.0),
                              (dev, "a", 32503680000000, 3.0)]).replace(b'"value":1.0',
                                                                      b'"value":NaN'),
        telemetry(stream, 2, [(dev, "b", t + 1, 1.0)]).replace(b'"value":1.0',
                                                                b'"value":1e999'),
        telemetry(stream, 3, [(dev, "b", t + 2, 1.0)]).replace(b'"ts"', b'"ts":1,"ts"'),
    ])
    # the other gateway's traffic, sent meanwhile, is stored in full
    for seq in range(1, 21):
        good.send([(f"{good.gateway}-d", "a", t + seq, float(seq))])
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = %s",
                            (good_ids[(f"{good.gateway}-d", "a")],)) == 20, what="good stored")
    wait_for(lambda: sum(map(len, dead_reasons(database_url, bad.gateway).values())) == 9,
             what="nine dead letters: five seqs, two values, one pair of times, one message")
    reasons = dead_reasons(database_url, bad.gateway)
    assert len(reasons["schema"]) == 5 + 2  # five seqs, the NaN and the 1e999 reading
    assert sum(d.startswith("seq:") for d in reasons["schema"]) == 5
    assert sum("value" in d for d in reasons["schema"]) == 2
    assert any("readings.2.ts" in d and "readings.3.ts" in d
               for d in reasons["out_of_window"])
    assert reasons["duplicate_key"] == ["duplicate key 'ts'"]
    assert reasons.get("rejected_by_database") is None
    # the good reading of the mixed batch is kept under its batch key
    assert scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = ANY(%s)",
                  (list(bad_ids.values()),)) == 1
    assert scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = ANY(%s)"
                  " AND value = 'NaN'", (list(bad_ids.values()),)) == 0
    assert "storing in parts" not in worker.log("ingest")
    bad.close()
    good.close()


def test_registry_follows_delete_and_reregister_while_running(
    processes: Processes, broker: BrokerFixture, database_url: str
) -> None:
    sender, ids = gateway(broker, database_url)
    start_worker(processes)
    device = f"{sender.gateway}-d"
    old_id, t = ids[(device, "a")], now_ms() - 60_000
    sender.send([(device, "a", t, 1.0)])
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = %s",
                            (old_id,)) == 1, what="first reading stored")
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM devices WHERE id = %s", (device,))

    def dead_after_delete() -> bool:
        sender.send([(device, "a", t + sender.seq, 2.0)])
        return "unknown_point" in dead_reasons(database_url, sender.gateway)

    wait_for(dead_after_delete, timeout_s=10, interval_s=0.2, what="deleted device refused")
    # a reading that raced the notification (milliseconds) may have gone under the old id;
    # from the first refusal on, none does
    under_old = scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = %s",
                       (old_id,))
    new_id = register(database_url, sender.gateway, {device: ["a", "b"]})[(device, "a")]
    assert new_id != old_id

    def stored_under_new_id() -> bool:
        sender.send([(device, "a", t + 1000 + sender.seq, 3.0)])
        return scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = %s",
                      (new_id,)) > 0

    wait_for(stored_under_new_id, timeout_s=10, interval_s=0.2, what="re-registered device")
    assert scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = %s",
                  (old_id,)) == under_old
    dead = orjson.loads(bytes(scalar(
        database_url, "SELECT payload FROM dead_letters WHERE topic = %s AND reason ="
        " 'unknown_point' ORDER BY id LIMIT 1", (f"cityops/v1/{sender.gateway}/telemetry",))))
    assert dead["readings"][0]["device"] == device
    sender.close()
