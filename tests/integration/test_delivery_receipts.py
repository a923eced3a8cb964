"""End-to-end delivery (issue #22 item 5): the agent keeps every batch until ingestion's commit
receipt, so a broker crash loses nothing, even what the broker had acknowledged and queued for
workers that were down."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Processes
from tests.helpers import wait_for
from tests.integration.delivery_kit import DeliveryStack
from tests.integration.test_agent_outage import _twice, stored


@pytest.fixture
def stack(processes: Processes, tmp_path: Path) -> Iterator[DeliveryStack]:
    s = DeliveryStack(processes, tmp_path)
    yield s
    s.close()


def test_broker_crash_while_workers_are_down_loses_nothing(
    stack: DeliveryStack, database_url: str
) -> None:
    worker = stack.start("ingest", "ingest-1")
    agent = stack.start("agent", "agent-1")
    wait_for(lambda: stored(database_url, stack.device)[0] > 50, timeout_s=30,
             what="readings flowing")
    wait_for(lambda: stack.metrics()["cityops_agent_committed_batches_total"] > 0,
             what="commit receipts reaching the agent")

    # the workers die: their persistent session keeps the subscription, so the broker
    # acknowledges the agent's batches and queues them for the dead worker
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    published = stack.metrics()["cityops_agent_published_batches_total"]
    wait_for(lambda: stack.metrics()["cityops_agent_published_batches_total"] >= published + 5,
             timeout_s=30, what="batches acknowledged by the broker while no worker runs")
    stack.sim.send_signal(signal.SIGKILL)  # no new readings from here: a fixed total
    stack.sim.wait(10)
    wait_for(lambda: stack.metrics()["cityops_agent_device_up"] == 0, what="device offline")
    m = stack.metrics()
    assert m["cityops_agent_awaiting_receipt_batches"] >= 5, m
    collected = int(m["cityops_agent_readings_total"])
    assert stored(database_url, stack.device)[0] < collected

    # the agent restarts (its memory of what it sent is gone), then the broker crashes and
    # loses the queued messages: only the agent's queue still has them
    agent.send_signal(signal.SIGTERM)
    agent.wait(15)
    stack.kill_broker()
    stack.restart_broker()
    stack.start("agent", "agent-2")
    stack.start("ingest", "ingest-2")

    def expected() -> int:
        # the restarted agent records the device as unreachable: readings of quality bad
        return collected + int(stack.metrics()["cityops_agent_readings_total"])

    def all_stored() -> bool:
        return (stack.metrics()["cityops_agent_queue_readings"] == 0
                and stored(database_url, stack.device)[0] == expected())

    try:
        wait_for(all_stored, timeout_s=60, interval_s=0.3, what="every reading stored")
    except AssertionError as err:
        raise AssertionError(f"{err}: stored {stored(database_url, stack.device)}, collected "
                             f"{collected}, agent {stack.metrics()}") from None
    rows, distinct = stored(database_url, stack.device)
    assert rows == distinct == expected(), _twice(database_url, stack.device)
    assert stack.metrics()["cityops_agent_committed_batches_total"] > 0


def test_batches_stuck_with_a_dead_worker_are_resent_to_a_live_one(
    processes: Processes, tmp_path: Path, database_url: str
) -> None:
    """A killed worker's persistent session keeps taking its share of the messages until it
    returns (an hour, at worst). Receipts from the live worker overtake those batches, so the
    agent sends them again after receipt_timeout_s and the live worker stores them: while the
    first worker stays dead, the stored batches have no holes."""
    stack = DeliveryStack(processes, tmp_path, queue={"receipt_timeout_s": 1})
    try:
        dead = stack.start("ingest", "ingest-1")
        stack.start("ingest", "ingest-2")
        stack.start("agent", "agent")
        wait_for(lambda: stored(database_url, stack.device)[0] > 50, timeout_s=30,
                 what="readings flowing")
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        # the batches of the next 40 seqs: about half go to the dead worker's session
        upto = _seqs(database_url, stack.gateway, 2**62)[1] + 40

        def no_holes() -> bool:
            return _seqs(database_url, stack.gateway, upto) == (upto, upto)

        try:
            wait_for(no_holes, timeout_s=40, interval_s=0.3,
                     what="every batch stored while the first worker stays dead")
        except AssertionError as err:
            raise AssertionError(f"{err}: (stored batches, highest seq) "
                                 f"{_seqs(database_url, stack.gateway, upto)} of {upto}, agent "
                                 f"{stack.metrics()}"
                                 ) from None
        assert stack.metrics()["cityops_agent_resent_batches_total"] > 0
        rows, distinct = stored(database_url, stack.device)
        assert rows == distinct, _twice(database_url, stack.device)
    finally:
        stack.close()


def _seqs(database_url: str, gateway: str, upto: int) -> tuple[int, int]:
    """(batches stored, highest seq stored) of the gateway (one agent, one stream), up to
    seq `upto`."""
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*), coalesce(max(seq), 0) FROM ingested_batches"
                            " WHERE gateway_id = %s AND seq <= %s", (gateway, upto)).fetchone()
