"""Issue #22 item 10: a worker gone for good (its host lost) leaves its share of telemetry queued
in its persistent session; a replacement started elsewhere with its client id takes the
session over and stores that share."""

from __future__ import annotations

import signal
import uuid

from tests.conftest import BrokerFixture, Processes
from tests.helpers import wait_for
from tests.integration.ingest_helpers import Gateway, now_ms, register, scalar, telemetry

MESSAGES = 120


def test_a_replacement_takes_over_a_dead_workers_session(
    processes: Processes, broker: BrokerFixture, database_url: str
) -> None:
    gw = f"gw-{uuid.uuid4().hex[:6]}"
    password = broker.add_gateway(gw)
    ids = register(database_url, gw, {f"{gw}-d": ["a"]})
    gone = {"CITYOPS_INGEST_CLIENT_ID": f"ingest-lost-host-{uuid.uuid4().hex[:4]}"}
    processes.start("ingest-b", "ingest")
    wait_for(lambda: "subscribed" in processes.log("ingest-b"), what="worker b subscribed")
    doomed = processes.start("ingest-a", "ingest", env=processes.env | gone)
    wait_for(lambda: "subscribed" in processes.log("ingest-a"), what="worker a subscribed")
    doomed.send_signal(signal.SIGKILL)  # its host is gone: no clean stop, session kept
    doomed.wait(10)

    sender = Gateway(broker, gw, password)
    t0 = now_ms() - 60_000
    sender.send_many([telemetry(sender.stream, seq, [(f"{gw}-d", "a", t0 + seq, 1.0)])
                      for seq in range(1, MESSAGES + 1)])
    sender.close()

    def stored() -> int:
        return scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = %s",
                      (ids[(f"{gw}-d", "a")],))

    # the broker keeps handing the dead session its turn: that share waits, unstored
    wait_for(lambda: stored() >= MESSAGES // 4, what="worker b's share stored")
    assert stored() < MESSAGES
    # elsewhere (another state dir: another host's slots), under the lost worker's id
    processes.start("ingest-a2", "ingest", env=processes.env | gone | {
        "CITYOPS_STATE_DIR": str(processes.log_dir / "other-host")})
    wait_for(lambda: stored() == MESSAGES, what="the dead worker's share stored")
