"""Rules evaluated by the ingest worker on the readings it has just committed.

Which worker gets a device's next batch is the broker's choice, so no rule state lives in a
worker's memory: each (rule, device) is evaluated under a transaction-level advisory lock, from
the state row in `rule_states` (condition active or not, newest reading evaluated) and the
readings committed in the database (by any worker). See docs/ingestion.md, "Rules".
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from psycopg import AsyncConnection, AsyncCursor

from cityops.errors import ConfigError, SinkUnavailable
from ingestion import alarms
from ingestion.decode import DecodedBatch
from ingestion.rules import evaluate as ev
from ingestion.rules.model import AnomalyRule, OfflineRule, Rule, ThresholdRule, parse_rule

log = logging.getLogger(__name__)
CATCH_UP_MS = 600_000  # how far back an evaluation replays readings it has not seen yet


@dataclass(frozen=True)
class PointInfo:
    point_id: int
    name: str
    device: str
    profile: str
    gateway: str


@dataclass
class Registry:
    rules: dict[str, Rule] = field(default_factory=dict)
    rule_updated_ms: dict[str, int] = field(default_factory=dict)
    by_point: dict[int, list[Rule]] = field(default_factory=dict)
    point_device: dict[int, str] = field(default_factory=dict)
    watched: set[int] = field(default_factory=set)  # points whose readings rules look at
    offline_devices: dict[str, list[str]] = field(default_factory=dict)  # rule id -> devices
    device_created_ms: dict[str, int] = field(default_factory=dict)


def matches(rule: Rule, p: PointInfo) -> bool:
    t = rule.target
    return ((t.point is None or t.point == p.name) and (not t.devices or p.device in t.devices)
            and (t.profile is None or t.profile == p.profile)
            and (t.gateway is None or t.gateway == p.gateway))


def build_registry(
    rules: list[tuple[Rule, int]], points: list[PointInfo], device_created_ms: dict[str, int]
) -> Registry:
    reg = Registry(device_created_ms=device_created_ms)
    by_point: dict[int, list[Rule]] = defaultdict(list)
    for rule, updated_ms in rules:
        reg.rules[rule.id] = rule
        reg.rule_updated_ms[rule.id] = updated_ms
        hits = [p for p in points if matches(rule, p)]
        if isinstance(rule, OfflineRule):
            reg.offline_devices[rule.id] = sorted({p.device for p in hits})
        else:
            for p in hits:
                by_point[p.point_id].append(rule)
    reg.by_point = dict(by_point)
    reg.point_device = {p.point_id: p.device for p in points}
    offline = {d for devices in reg.offline_devices.values() for d in devices}
    reg.watched = set(by_point) | {p.point_id for p in points if p.device in offline}
    return reg


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class RuleEngine:
    def __init__(self, database_url: str, reload_s: float = 5.0) -> None:
        self.database_url = database_url
        self.reload_s = reload_s
        self.conn: AsyncConnection | None = None
        self.registry = Registry()
        self._loaded_at = -1e9
        self._models: dict[tuple[str, int], tuple[float, ev.SeasonalModel | None]] = {}
        self.transitions = 0

    async def _connection(self) -> AsyncConnection:
        if self.conn is None or self.conn.closed:
            try:
                self.conn = await AsyncConnection.connect(self.database_url)
            except psycopg.OperationalError as err:
                raise SinkUnavailable(f"rules: cannot reach the database: {err}") from err
        return self.conn

    async def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self.reload_s:
            return
        conn = await self._connection()
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute("SELECT id, body, updated_at FROM rules WHERE enabled")
            rows = await cur.fetchall()
            await cur.execute(
                "SELECT p.id, p.name, d.id, d.profile_id, d.gateway_id, d.created_at"
                " FROM points p JOIN devices d ON d.id = p.device_id")
            point_rows = await cur.fetchall()
        rules = []
        for rule_id, body, updated_at in rows:
            try:
                rules.append((parse_rule(body), int(updated_at.timestamp() * 1000)))
            except ConfigError as err:
                log.warning("rule %s ignored: %s", rule_id, err.detail)
        points = [PointInfo(*r[:5]) for r in point_rows]
        created = {r[2]: int(r[5].timestamp() * 1000) for r in point_rows}
        self.registry = build_registry(rules, points, created)
        self._loaded_at = time.monotonic()

    def watches(self, batches: list[DecodedBatch]) -> bool:
        watched = self.registry.watched
        if not watched:
            return False
        return any(row[1] in watched for b in batches for row in b.numeric) or any(
            row[1] in watched for b in batches for row in b.text)

    async def on_stored(self, batches: list[DecodedBatch]) -> int:
        """Evaluate the rules touched by committed batches; returns transitions made."""
        await self.refresh()
        reg = self.registry
        if not reg.rules:
            return 0
        per_point: dict[int, list[float]] = defaultdict(list)
        first_ms: dict[int, int] = {}
        devices: set[str] = set()
        for b in batches:
            for ts, pid, value, quality in b.numeric:
                if pid in reg.by_point and value is not None and quality < 2:
                    per_point[pid].append(value)
                    first_ms[pid] = min(first_ms.get(pid, ts), ts)
                if pid in reg.watched:
                    devices.add(reg.point_device[pid])
            devices.update(reg.point_device[r[1]] for r in b.text if r[1] in reg.watched)
        offline = [r for r in reg.rules.values() if isinstance(r, OfflineRule)]
        if not per_point and not offline:
            return 0
        active = await self._active(sorted(devices))
        before = self.transitions
        for pid, values in per_point.items():
            device = reg.point_device[pid]
            for rule in reg.by_point[pid]:
                if not self._worth_it(rule, (rule.id, device) in active, values):
                    continue
                await self._evaluate(rule, device, pid, first_ms[pid])
        for rule in offline:
            for device in devices & set(reg.offline_devices.get(rule.id, ())):
                if (rule.id, device) in active:
                    await self._offline_step(rule, device, False, "the device reports again")
        return self.transitions - before

    @staticmethod
    def _worth_it(rule: Rule, active: bool, values: list[float]) -> bool:
        """A cheap in-memory test: a threshold with no value beyond it cannot raise."""
        if isinstance(rule, ThresholdRule) and not active:
            return any(ev._beyond(rule, v) for v in values)
        return True

    async def _active(self, devices: list[str]) -> set[tuple[str, str]]:
        conn = await self._connection()
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                "SELECT rule_id, device_id FROM rule_states WHERE active AND device_id = ANY(%s)",
                (devices,))
            return {(r, d) for r, d in await cur.fetchall()}

    async def _lock(self, cur: AsyncCursor, rule_id: str, device: str) -> tuple[bool, int | None]:
        await cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))",
                          (rule_id, device))
        await cur.execute(
            "SELECT active, (extract(epoch FROM evaluated_to) * 1000)::bigint FROM rule_states"
            " WHERE rule_id = %s AND device_id = %s", (rule_id, device))
        row = await cur.fetchone()
        return (False, None) if row is None else (row[0], row[1])

    async def _evaluate(self, rule: Rule, device: str, pid: int, first_ms: int) -> None:
        conn = await self._connection()
        async with conn.transaction(), conn.cursor() as cur:
            active, evaluated_to = await self._lock(cur, rule.id, device)
            start = first_ms if evaluated_to is None else max(evaluated_to + 1,
                                                             first_ms - CATCH_UP_MS)
            readings = await self._readings(cur, rule, pid, start)
            first_new = next((i for i, r in enumerate(readings) if r[0] >= start), len(readings))
            if first_new == len(readings):
                return  # another worker has evaluated these readings already
            model = await self._model(cur, rule, pid, readings[-1][0])
            steps = ev.replay(rule, readings, first_new, active, model)
            for step in steps:
                await self._apply(cur, rule, device, pid, step.active, step.value,
                                  _ts(step.at_ms), step.message)
            last_t, last_v = readings[-1]
            if not steps and active:
                await alarms.touch_alarm(cur, rule.id, device, last_v, _ts(last_t))
            await self._save_state(cur, rule.id, device, steps[-1].active if steps else active,
                                   bool(steps), _ts(last_t))

    async def _readings(
        self, cur: AsyncCursor, rule: Rule, pid: int, start_ms: int
    ) -> list[ev.Sample]:
        lookback_s = 0.0
        if isinstance(rule, ThresholdRule):
            lookback_s = rule.for_s
        elif not (isinstance(rule, AnomalyRule) and rule.method == "stl"):
            lookback_s = rule.window_s  # type: ignore[union-attr]
        since = start_ms - int(lookback_s * 1000)
        await cur.execute(
            "SELECT (extract(epoch FROM time) * 1000)::bigint, value FROM readings"
            " WHERE point_id = %s AND time >= %s AND quality < 2 AND value IS NOT NULL"
            " ORDER BY time", (pid, _ts(since)))
        rows = [(t, v) for t, v in await cur.fetchall()]
        if isinstance(rule, ThresholdRule) and rule.for_s > 0:
            # the run beyond the limit may have begun before the window: one reading more
            await cur.execute(
                "SELECT (extract(epoch FROM time) * 1000)::bigint, value FROM readings"
                " WHERE point_id = %s AND time < %s AND quality < 2 AND value IS NOT NULL"
                " ORDER BY time DESC LIMIT 1", (pid, _ts(since)))
            rows = [(t, v) for t, v in await cur.fetchall()] + rows
        return rows

    async def _model(
        self, cur: AsyncCursor, rule: Rule, pid: int, now_ms: int
    ) -> ev.SeasonalModel | None:
        if not (isinstance(rule, AnomalyRule) and rule.method == "stl"):
            return None
        cached = self._models.get((rule.id, pid))
        if cached is not None and time.monotonic() - cached[0] < rule.refit_s:
            return cached[1]
        await cur.execute(
            "SELECT (extract(epoch FROM time_bucket(make_interval(secs => %s), time)) * 1000)"
            "::bigint AS b, avg(value) FROM readings WHERE point_id = %s AND time >= %s"
            " AND time < %s AND quality < 2 GROUP BY b ORDER BY b",
            (rule.bucket_s, pid, _ts(now_ms - int(rule.window_s * 1000)),
             _ts(now_ms - int(rule.bucket_s * 1000))))
        buckets = [(b, v) for b, v in await cur.fetchall() if v is not None]
        model = ev.fit_seasonal(buckets, rule.bucket_s, rule.period_s)
        self._models[(rule.id, pid)] = (time.monotonic(), model)
        return model

    async def _apply(
        self, cur: AsyncCursor, rule: Rule, device: str, pid: int | None, raised: bool,
        value: float | None, at: datetime | None, message: str,
    ) -> None:
        self.transitions += 1
        if raised:
            await alarms.raise_alarm(
                cur, rule_id=rule.id, severity=rule.severity.value, regroup_s=rule.regroup_s,
                device_id=device, point_id=pid, value=value, reading_at=at,
                message=f"{rule.title or rule.id}: {message}")
        elif rule.auto_clear:
            await alarms.clear_by_rule(cur, rule.id, device, message)

    @staticmethod
    async def _save_state(
        cur: AsyncCursor, rule_id: str, device: str, active: bool, changed: bool,
        evaluated_to: datetime | None,
    ) -> None:
        await cur.execute(
            "INSERT INTO rule_states (rule_id, device_id, active, evaluated_to)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (rule_id, device_id) DO UPDATE SET"
            " active = excluded.active, evaluated_to = coalesce(excluded.evaluated_to,"
            " rule_states.evaluated_to),"
            " since = CASE WHEN %s THEN now() ELSE rule_states.since END",
            (rule_id, device, active, evaluated_to, changed))

    # -- offline ------------------------------------------------------------------------------
    async def check_offline(self, now_ms: int | None = None) -> int:
        """Raise or clear `offline` alarms; the caller makes sure one worker runs it at a time."""
        await self.refresh()
        reg = self.registry
        rules = [r for r in reg.rules.values() if isinstance(r, OfflineRule)]
        devices = sorted({d for r in rules for d in reg.offline_devices.get(r.id, ())})
        if not devices:
            return 0
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        last_seen = await self._last_seen(devices)
        active = await self._active(devices)
        before = self.transitions
        for rule in rules:
            for device in reg.offline_devices.get(rule.id, ()):
                since = last_seen.get(device) or max(reg.device_created_ms.get(device, 0),
                                                     reg.rule_updated_ms[rule.id])
                silent_s = (now_ms - since) / 1000
                offline = silent_s > rule.after_s
                if offline != ((rule.id, device) in active):
                    why = (f"no reading for {silent_s:.0f} s (limit {rule.after_s:g} s)"
                           if offline else "the device reports again")
                    await self._offline_step(rule, device, offline, why, silent_s)
        return self.transitions - before

    async def _last_seen(self, devices: list[str]) -> dict[str, int]:
        conn = await self._connection()
        seen: dict[str, int] = {}
        async with conn.transaction(), conn.cursor() as cur:
            for table in ("readings", "readings_text"):
                await cur.execute(
                    "SELECT p.device_id, (extract(epoch FROM max(r.time)) * 1000)::bigint"
                    f" FROM points p CROSS JOIN LATERAL (SELECT time FROM {table}"
                    " WHERE point_id = p.id ORDER BY time DESC LIMIT 1) r"
                    " WHERE p.device_id = ANY(%s) GROUP BY p.device_id", (devices,))
                for device, ms in await cur.fetchall():
                    seen[device] = max(seen.get(device, 0), ms)
        return seen

    async def _offline_step(
        self, rule: OfflineRule, device: str, offline: bool, why: str,
        silent_s: float | None = None,
    ) -> None:
        conn = await self._connection()
        async with conn.transaction(), conn.cursor() as cur:
            active, _ = await self._lock(cur, rule.id, device)
            if active == offline:
                return  # another worker got here first
            await self._apply(cur, rule, device, None, offline, silent_s, None, why)
            await self._save_state(cur, rule.id, device, offline, True, None)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None
