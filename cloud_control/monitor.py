"""The periodic cloud sync: inventory and capacity into hypertables, and cloud alarms
(a project near its quota, a server in ERROR, a cloud service not answering)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

import psycopg

from cityops.errors import ProviderError
from cityops.settings import Settings
from cloud_control.handlers import Context
from cloud_control.provider import Resource, Usage

log = logging.getLogger(__name__)
# quota metrics whose fullness is worth an alarm (hypervisor totals are capacity, not quota)
QUOTA_METRICS = {"cores", "ram", "instances"}


@dataclass
class Snapshot:
    resources: list[Resource]
    usages: list[Usage]
    services: dict[str, str]


def take_snapshot(ctx: Context) -> Snapshot:
    """Ask the cloud everything once (synchronous: run it in a thread)."""
    try:
        provider = ctx.provider
    except ProviderError as err:
        return Snapshot([], [], {"identity": f"down: {err.detail}"})
    services = provider.service_health()
    try:
        return Snapshot(provider.inventory(), provider.capacity(), services)
    except ProviderError as err:
        log.warning("cloud sync incomplete: %s", err.detail)
        return Snapshot([], [], services)


def wanted_alarms(snap: Snapshot, ratio: float) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, subject) -> (severity, message) for every condition that holds now."""
    alarms: dict[tuple[str, str], tuple[str, str]] = {}
    for u in snap.usages:
        quota = u.scope != "hypervisor" and u.metric in QUOTA_METRICS and u.limit > 0
        if quota and u.used / u.limit >= ratio:
            alarms[("quota_near_full", f"{u.scope}/{u.metric}")] = (
                "major", f"project {u.scope} uses {u.used:g} of {u.limit:g} {u.metric}")
    for r in snap.resources:
        if r.kind == "server" and r.status == "ERROR":
            alarms[("server_error", f"{r.project}/{r.name}")] = (
                "critical", f"server {r.name} of project {r.project} is in ERROR")
    for service, state in snap.services.items():
        if state != "ok":
            alarms[("service_down", service)] = ("critical", f"cloud service {service}: {state}")
    return alarms


async def sync_cloud(settings: Settings, ctx: Context | None = None) -> Snapshot:
    ctx = ctx or Context(settings=settings, report=lambda *a, **k: None)
    snap = await asyncio.to_thread(take_snapshot, ctx)
    url = settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        if snap.resources:
            await _record_inventory(conn, snap.resources)
        if snap.usages:
            await _record_capacity(conn, snap.usages)
        for service, state in snap.services.items():
            await conn.execute(
                "INSERT INTO cloud_services (service, state) VALUES (%s, %s) ON CONFLICT"
                " (service) DO UPDATE SET state = excluded.state, checked_at = now()",
                (service, state))
        await _apply_alarms(conn, wanted_alarms(snap, settings.quota_alarm_ratio),
                            complete=bool(snap.resources))
    return snap


async def _record_inventory(conn: psycopg.AsyncConnection, resources: list[Resource]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO cloud_resources (kind, id, name, project, status, attributes)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (kind, id) DO UPDATE SET"
            " name = excluded.name, project = excluded.project, status = excluded.status,"
            " attributes = excluded.attributes, seen_at = now()",
            [(r.kind, r.id, r.name, r.project, r.status, json.dumps(r.attributes))
             for r in resources])
        # now() is the transaction's start: every row seen in this sync carries it
        await cur.execute("DELETE FROM cloud_resources WHERE seen_at < now()")
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in resources:
        counts[(r.project, r.kind)][r.status] += 1
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO cloud_inventory (time, kind, project, count, by_status)"
            " VALUES (now(), %s, %s, %s, %s)",
            [(kind, project, sum(c.values()), json.dumps(c)) for (project, kind), c in
             counts.items()])


async def _record_capacity(conn: psycopg.AsyncConnection, usages: list[Usage]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO cloud_capacity (time, scope, metric, used, lim)"
            " VALUES (now(), %s, %s, %s, %s)",
            [(u.scope, u.metric, u.used, u.limit) for u in usages])


async def _apply_alarms(conn: psycopg.AsyncConnection,
                        wanted: dict[tuple[str, str], tuple[str, str]], complete: bool) -> None:
    for (kind, subject), (severity, message) in wanted.items():
        await conn.execute(
            "INSERT INTO cloud_alarms (kind, subject, severity, message) VALUES (%s,%s,%s,%s)"
            " ON CONFLICT (kind, subject) WHERE state <> 'cleared' DO UPDATE SET"
            " count = cloud_alarms.count + 1, last_seen_at = now(), message = excluded.message",
            (kind, subject, severity, message))
    # without a full inventory we cannot tell that a condition went away: clear nothing
    kinds = ["quota_near_full", "server_error", "service_down"] if complete else ["service_down"]
    current = [f"{k}|{s}" for k, s in wanted]
    await conn.execute(
        "UPDATE cloud_alarms SET state = 'cleared', cleared_at = now()"
        " WHERE state <> 'cleared' AND kind = ANY(%s) AND NOT (kind || '|' || subject) = ANY(%s)",
        (kinds, current))
