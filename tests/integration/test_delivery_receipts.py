"""End-to-end delivery (issue #22 item 5): the agent keeps every batch until ingestion's commit
receipt, so a broker crash loses nothing, even what the broker had acknowledged and queued for
workers that were down."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

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
    stack.broker.start()
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
