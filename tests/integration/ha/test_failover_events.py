"""kill -9 of the primary's postgres while city events are reported and moved through the
workflow via the API (issue #19 item 7): every call the API acknowledged with a 2xx is there
after the failover, nothing twice, and the API answers again within 30 s. The client behaves
as the console and the field app do: a report is retried with its Idempotency-Key, a step is
retried only when the event has not taken it.

The API may hide the failover altogether (its pool drops the dead connections and opens new
ones to the new primary within a request's wait), so "resumed" is judged from the cluster's
side: a new primary is there, and whole cases went through after it and after the last call
refused, if any was."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

import psycopg
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import bearer
from tests.integration.ha.conftest import HaFixture

STEPS = (("register", "dispatcher", {}), ("dispatch", "dispatcher", None),
         ("accept", "staff", {}))
AFTER_STEP = {"register": "registered", "dispatch": "dispatched", "accept": "processing"}
BEFORE_KILL, AFTER_RESUME = 4, 4  # whole cases before the kill, and after the API is back


@dataclass
class Ledger:
    """What the API acknowledged (2xx), what it refused while the database was away."""

    reports: dict[str, int] = field(default_factory=dict)  # idempotency key -> event id
    steps: list[tuple[int, str]] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)  # monotonic times of 5xx / errors
    reasons: list[str] = field(default_factory=list)  # what each failure said, for the report
    ok_at: list[float] = field(default_factory=list)
    promoted_at: float | None = None  # when the test first saw a new primary


class Caller:
    def __init__(self, client: TestClient, headers: dict[str, dict], ledger: Ledger) -> None:
        self.client, self.headers, self.ledger = client, headers, ledger

    def _call(self, who: str, path: str, body: dict, key: str | None = None):
        headers = self.headers[who] | ({"Idempotency-Key": key} if key else {})
        try:
            reply = self.client.post(path, json=body, headers=headers)
        except Exception as err:  # a connection lost under the request: as a 5xx to a client
            self._failed(f"{path}: {err!r}")
            return None
        if reply.status_code >= 500:
            self._failed(f"{path}: {reply.status_code} {reply.text[:200]}")
            return None
        assert reply.status_code < 300, f"POST {path}: {reply.status_code} {reply.text}"
        self.ledger.ok_at.append(time.monotonic())
        return reply.json()

    def _failed(self, reason: str) -> None:
        self.ledger.failures.append(time.monotonic())
        self.ledger.reasons.append(reason)

    def report(self, n: int, deadline: float) -> int:
        key = f"ha-{secrets.token_hex(6)}"
        body = {"channel": "hotline", "category_code": "E01.02", "address": "人民路",
                "description": f"故障切换测试 {key} #{n}"}
        while time.monotonic() < deadline:
            if (made := self._call("operator", "/v1/events", body, key)) is not None:
                self.ledger.reports[key] = made["id"]
                return made["id"]
            time.sleep(0.2)
        raise AssertionError(f"report {key} not acknowledged within the deadline")

    def step(self, event: int, action: str, who: str, body: dict, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._call(who, f"/v1/events/{event}/{action}", body) is not None:
                self.ledger.steps.append((event, action))
                return
            time.sleep(0.2)
            # the lost answer may have been a commit: a real client reads before retrying
            state = self._state(event)
            if state is not None and state != _state_before(action):
                return
        raise AssertionError(f"event {event} {action} not done within the deadline; "
                             f"last refusals: {self.ledger.reasons[-3:]}")

    def _state(self, event: int) -> str | None:
        try:
            reply = self.client.get(f"/v1/events/{event}", headers=self.headers["dispatcher"])
        except Exception:
            return None
        return reply.json()["state"] if reply.status_code == 200 else None


def _back_since(ledger: Ledger) -> float | None:
    """Since when the API has been serving the new primary: after the promotion and after the
    last refused call; None before the promotion."""
    if ledger.promoted_at is None:
        return None
    return max([ledger.promoted_at, *ledger.failures[-1:]])


def _resumed(ledger: Ledger) -> bool:
    """A new primary, and whole cases acknowledged after it and after the last refusal."""
    since = _back_since(ledger)
    return since is not None and sum(t > since for t in ledger.ok_at) >= (
        AFTER_RESUME * (1 + len(STEPS)))


def _watch_promotion(cluster, old: str, ledger: Ledger) -> None:
    if ledger.promoted_at is None and (cluster.leader() or {"name": old})["name"] != old:
        ledger.promoted_at = time.monotonic()


def _state_before(action: str) -> str:
    return {"register": "reported", "dispatch": "registered", "accept": "dispatched"}[action]


def _one_case(caller: Caller, n: int, department: str, deadline: float) -> None:
    event = caller.report(n, deadline)
    for action, who, body in STEPS:
        caller.step(event, action, who, body if body is not None
                    else {"department_id": department}, deadline)


def _people(settings: Settings, department: str) -> dict[str, dict]:
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES (%s, '城管局') "
                     "ON CONFLICT DO NOTHING", (department,))
    return {"operator": bearer(settings, "operator", "ha-op"),
            "dispatcher": bearer(settings, "dispatcher", "ha-disp"),
            "staff": bearer(settings, "department_staff", f"ha-staff-{department}", department)}


def test_kill_9_of_the_primary_during_event_handling_loses_and_duplicates_nothing(
    ha: HaFixture, ha_settings: Settings
) -> None:
    cluster = ha.cluster
    cluster.wait_synchronous(60)  # another test may have failed over just before
    department = f"cgj-ha-{secrets.token_hex(2)}"
    ledger = Ledger()
    with TestClient(create_app(ha_settings)) as client:
        caller = Caller(client, _people(ha_settings, department), ledger)
        deadline = time.monotonic() + 60
        for n in range(BEFORE_KILL):
            _one_case(caller, n, department, deadline)
        old = cluster.leader()["name"]
        # the kill lands while cases are being reported and moved, not between runs
        killer = threading.Timer(0.3, cluster.kill_postgres, args=(old,))
        killer.start()
        killed_at = time.monotonic() + 0.3
        deadline = killed_at + 60  # a loaded machine may have been slow before the kill
        n = BEFORE_KILL
        while time.monotonic() < deadline and not _resumed(ledger):
            _one_case(caller, n, department, deadline)
            _watch_promotion(cluster, old, ledger)
            n += 1
        killer.join()
    assert ledger.promoted_at is not None, "the standby was not promoted within 60 s"
    assert _resumed(ledger), f"no whole cases after the failover: {ledger.reasons[-3:]}"
    # back for good: the first acknowledged call after the last refused one (none refused:
    # the API hid the failover, each call waited for the new primary within its request)
    resumed_s = (min(t for t in ledger.ok_at if t > ledger.failures[-1]) - killed_at
                 if ledger.failures else 0.0)
    assert resumed_s < 30, f"the API answered again only after {resumed_s:.1f} s"
    print(f"\nevents: API acknowledging again {resumed_s:.1f} s after the kill; "
          f"{len(ledger.failures)} calls refused meanwhile")
    _assert_all_there_once(ha.url, ledger)


def _assert_all_there_once(url: str, ledger: Ledger) -> None:
    with psycopg.connect(url) as conn:
        made = dict(conn.execute(
            "SELECT key, event_id FROM event_report_keys WHERE reporter = 'ha-op'").fetchall())
        ids = list(ledger.reports.values())
        described = conn.execute(
            "SELECT substring(description from 'ha-[0-9a-f]+'), count(*) FROM events"
            " WHERE id = ANY(%s) OR description LIKE '故障切换测试%%' GROUP BY 1",
            (ids,)).fetchall()
        steps = conn.execute(
            "SELECT event_id, action, count(*) FROM event_transitions WHERE event_id = ANY(%s)"
            " GROUP BY 1, 2", (ids,)).fetchall()
        states = dict(conn.execute("SELECT id, state FROM events WHERE id = ANY(%s)",
                                   (ids,)).fetchall())
    assert {k: made.get(k) for k in ledger.reports} == ledger.reports, "every report kept"
    assert all(count == 1 for _, count in described), f"an event made twice: {described}"
    assert {key for key, _ in described} == set(ledger.reports)
    counted = {(event, action): count for event, action, count in steps}
    assert all(c == 1 for c in counted.values()), f"a step taken twice: {counted}"
    for event, action in ledger.steps:
        assert counted.get((event, action)) == 1, f"event {event}: {action} acknowledged, lost"
    assert set(states.values()) == {AFTER_STEP["accept"]}, states
