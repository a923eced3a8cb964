"""Issue #22 item 4, the class: whatever the database refuses (here a trigger refuses one batch
key) is found by storing the flush in halves, not message by message, so one gateway's bad
input costs a few transactions, not one per message of everybody's traffic."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from pydantic import SecretStr

from cityops.settings import Settings
from infra.db.admin import drop_database
from infra.db.migrate import migrate
from tests.conftest import BrokerFixture, Processes, _with_database, settings_env
from tests.helpers import wait_for
from tests.integration.ingest_helpers import Gateway, now_ms, register, scalar, telemetry

MESSAGES = 200
POISON_SEQ = 666


@pytest.fixture
def refusing_database(stack_settings: Settings) -> Iterator[str]:
    """A database of this test's own whose ingested_batches refuses one seq."""
    admin = stack_settings.database_admin_url.get_secret_value()
    name = f"cityops_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(stack_settings.database_url.get_secret_value(), name)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.seq = {POISON_SEQ} THEN RAISE EXCEPTION 'poison batch'; END IF;"
            " RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER refuse_poison BEFORE INSERT ON ingested_batches"
                     " FOR EACH ROW EXECUTE FUNCTION refuse_poison()")
    yield url
    drop_database(admin, name)


def commits(url: str) -> int:
    return scalar(url, "SELECT xact_commit FROM pg_stat_database WHERE datname ="
                       " current_database()")


def test_a_refused_message_costs_a_few_transactions(
    processes: Processes, settings: Settings, broker: BrokerFixture, refusing_database: str
) -> None:
    url = refusing_database
    gw = f"gw-{uuid.uuid4().hex[:6]}"
    password = broker.add_gateway(gw)
    point = register(url, gw, {f"{gw}-d": ["a"]})[(f"{gw}-d", "a")]
    env = settings_env(settings.model_copy(update={"database_url": SecretStr(url)}))
    processes.start("ingest", "ingest", env=env | {
        "CITYOPS_INGEST_BATCH_MAX_WAIT_MS": "1500",  # one flush holds them all
        "CITYOPS_STATE_DIR": str(processes.log_dir / "state")})
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    sender = Gateway(broker, gw, password)
    t0 = now_ms() - 60_000
    payloads = [telemetry(sender.stream, seq, [(f"{gw}-d", "a", t0 + seq, 1.0)])
                for seq in range(1, MESSAGES + 1)]
    payloads.insert(MESSAGES // 3, telemetry(sender.stream, POISON_SEQ,
                                             [(f"{gw}-d", "a", t0, 2.0)]))
    before = commits(url)
    sender.send_many(payloads)
    sender.close()
    wait_for(lambda: scalar(url, "SELECT count(*) FROM dead_letters WHERE reason ="
                                 " 'rejected_by_database'") == 1, interval_s=1,
             what="the poison dead-lettered")  # slow polls: each is a transaction too
    wait_for(lambda: scalar(url, "SELECT count(*) FROM readings WHERE point_id = %s",
                            (point,)) == MESSAGES, interval_s=1, what="every other reading stored")
    spent = commits(url) - before
    print(f"transactions for {MESSAGES + 1} messages with one refused: {spent}")
    assert "storing in parts" in processes.log("ingest")
    # halves: about 2 log2(201) = 16 stores; message by message it was 201 (plus the worker's
    # periodic work in both cases, a few transactions a second)
    assert spent < MESSAGES // 2, f"{spent} transactions"
