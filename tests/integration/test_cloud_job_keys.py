"""A cloud job submitted twice with one Idempotency-Key (the console's double click, a retry
after a lost answer) is queued once; the key reused for another request is 409. Against the
API and the real PostgreSQL; no worker runs the jobs (their creation is what is tested)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.principal import Role
from cityops.settings import Settings
from tests.api_kit import bearer


@pytest.fixture
def api(settings: Settings, database_url: str) -> Iterator[TestClient]:
    name = f"t-keys-{uuid.uuid4().hex[:6]}"
    with TestClient(create_app(settings)) as client:
        client.headers.update(bearer(settings, Role.OPS_ENGINEER, name))
        yield client
    with psycopg.connect(database_url) as conn:  # no worker of a later test may run them
        conn.execute("DELETE FROM procrastinate_jobs WHERE args->>'job_id' IN"
                     " (SELECT id::text FROM jobs WHERE requested_by = %s)", (name,))
        conn.execute("DELETE FROM jobs WHERE requested_by = %s", (name,))


def _jobs(database_url: str, name: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT j.id::text, count(p.id) FROM jobs j LEFT JOIN procrastinate_jobs p"
            " ON p.args->>'job_id' = j.id::text WHERE j.params->>'name' = %s GROUP BY j.id",
            (name,)).fetchall()


def test_one_key_queues_one_job(api: TestClient, database_url: str) -> None:
    name = f"net-{uuid.uuid4().hex[:6]}"
    body = {"project": "cgj", "name": name, "cidr": "10.40.0.0/24"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.post("/v1/cloud/networks", json=body, headers=key)
    again = api.post("/v1/cloud/networks", json=body, headers=key)
    assert first.status_code == again.status_code == 202, again.text
    assert first.json()["job"] == again.json()["job"]
    assert _jobs(database_url, name) == [(first.json()["job"], 1)]  # one row, queued once

    other = api.post("/v1/cloud/networks", json=body | {"cidr": "10.41.0.0/24"}, headers=key)
    assert other.status_code == 409, other.text
    assert "used for another request" in other.json()["detail"]
    short = api.post("/v1/cloud/networks", json=body, headers={"Idempotency-Key": "abc"})
    assert short.status_code == 422 and "Idempotency-Key" in short.json()["detail"]
    unkeyed = [api.post("/v1/cloud/networks", json=body).json()["job"] for _ in range(2)]
    assert len(set(unkeyed)) == 2  # without a key every request is a job of its own
    assert len(_jobs(database_url, name)) == 3
