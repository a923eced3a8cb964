"""The periodic cloud sync: inventory and capacity into hypertables, and cloud alarms
(a project near its quota, a server or volume in error, a cloud service or agent down).

Each worker syncs its own cloud (`CITYOPS_CLOUD_NAME`); every row it writes or clears names
that cloud, so the syncs of several clouds sharing one database never touch each other's.
The inventory is listed part by part: a part whose service does not answer keeps its last
rows, marked stale, while the rest is synced.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg

from cityops.errors import ProviderError
from cityops.settings import Settings
from cloud_control.handlers import Context
from cloud_control.openstack_watch import INVENTORY_PARTS, SERVICE_OF_PART
from cloud_control.provider import Resource, Usage

log = logging.getLogger(__name__)
# quota metrics whose fullness is worth an alarm (hypervisor totals are capacity, not quota)
QUOTA_METRICS = {"cores", "ram", "instances"}
PARTS = (*INVENTORY_PARTS, "capacity")
ALARM_SOURCE = {"quota_near_full": "capacity", "server_error": "server",
                "volume_error": "volume"}


@dataclass
class Snapshot:
    cloud: str
    resources: list[Resource] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # part -> why it was not synced

    def synced(self, part: str) -> bool:
        return part not in self.failed


def take_snapshot(ctx: Context) -> Snapshot:
    """Ask the cloud everything once (synchronous: run it in a thread)."""
    snap = Snapshot(ctx.settings.cloud_name)
    try:
        provider = ctx.provider
        snap.services = provider.service_health()
    except ProviderError as err:
        snap.services = {"identity": f"down: {err.detail}"}
    if snap.services.get("identity") != "ok":
        snap.failed = dict.fromkeys(PARTS, "identity (Keystone) does not answer")
        return snap
    try:
        names = provider.project_names()
    except ProviderError as err:
        snap.failed = dict.fromkeys(PARTS, err.detail)
        return snap
    asked = [p for p in INVENTORY_PARTS if snap.services.get(SERVICE_OF_PART[p], "ok") == "ok"]
    for part in set(INVENTORY_PARTS) - set(asked):
        snap.failed[part] = f"{SERVICE_OF_PART[part]} does not answer"
    # the parts are independent reads: at once, so that a sync takes the slowest one's time
    with ThreadPoolExecutor(4) as pool:
        capacity = pool.submit(_outcome, provider.capacity)
        listed = [(p, pool.submit(_outcome, provider.inventory_part, p, names)) for p in asked]
    for part, future in [*listed, ("capacity", capacity)]:
        found, error = future.result()
        if error is not None:
            snap.failed[part] = error
        elif part == "capacity":
            snap.usages = found
        else:
            snap.resources += found
    if snap.failed:
        log.warning("cloud %s: sync incomplete: %s", snap.cloud, snap.failed)
    return snap


def _outcome(call, *args) -> tuple[list, str | None]:
    try:
        return call(*args), None
    except ProviderError as err:
        return [], err.detail


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
        elif r.kind == "volume" and r.status.startswith("error"):
            alarms[("volume_error", f"{r.project}/{r.name}")] = (
                "major", f"volume {r.name} of project {r.project} is {r.status}")
    for service, state in snap.services.items():
        if state != "ok":
            alarms[("service_down", service)] = ("critical", f"cloud service {service}: {state}")
    return alarms


async def sync_cloud(settings: Settings, ctx: Context | None = None) -> Snapshot:
    ctx = ctx or Context(settings=settings, report=lambda *a, **k: None)
    snap = await asyncio.to_thread(take_snapshot, ctx)
    url = settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        await _record_inventory(conn, snap)
        if snap.synced("capacity"):
            await _record_capacity(conn, snap.cloud, snap.usages)
        await _record_services(conn, snap)
        await _record_parts(conn, snap)
        await _apply_alarms(conn, snap, wanted_alarms(snap, settings.quota_alarm_ratio))
    return snap


async def _record_inventory(conn: psycopg.AsyncConnection, snap: Snapshot) -> None:
    listed = [p for p in INVENTORY_PARTS if snap.synced(p)]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO cloud_resources (cloud, kind, id, name, project, status, attributes)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (cloud, kind, id) DO UPDATE SET"
            " name = excluded.name, project = excluded.project, status = excluded.status,"
            " attributes = excluded.attributes, seen_at = now(), stale = false",
            [(snap.cloud, r.kind, r.id, r.name, r.project, r.status, json.dumps(r.attributes))
             for r in snap.resources])
        # now() is the transaction's start: every row seen in this sync carries it
        await cur.execute(
            "DELETE FROM cloud_resources WHERE cloud = %s AND kind = ANY(%s) AND seen_at < now()",
            (snap.cloud, listed))
        await cur.execute(
            "UPDATE cloud_resources SET stale = true WHERE cloud = %s AND NOT kind = ANY(%s)",
            (snap.cloud, listed))
    if not snap.synced("project"):
        return  # without the project list a missing count cannot be told from a zero
    await _record_counts(conn, snap, listed)


async def _record_counts(conn: psycopg.AsyncConnection, snap: Snapshot,
                         listed: list[str]) -> None:
    """A count per project and listed kind, zero included: a history that only records what
    exists never shows the last server going away."""
    projects = {r.name for r in snap.resources if r.kind == "project"}
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for project in projects:
        for kind in listed:
            if kind != "project":
                counts[(project, kind)] = Counter()
    for r in snap.resources:
        if r.kind != "project" and r.project in projects:
            counts[(r.project, r.kind)][r.status] += 1
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO cloud_inventory (time, cloud, kind, project, count, by_status)"
            " VALUES (now(), %s, %s, %s, %s, %s)",
            [(snap.cloud, kind, project, sum(c.values()), json.dumps(c))
             for (project, kind), c in counts.items()])


async def _record_capacity(conn: psycopg.AsyncConnection, cloud: str,
                           usages: list[Usage]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO cloud_capacity (time, cloud, scope, metric, used, lim)"
            " VALUES (now(), %s, %s, %s, %s, %s)",
            [(cloud, u.scope, u.metric, u.used, u.limit) for u in usages])


async def _record_services(conn: psycopg.AsyncConnection, snap: Snapshot) -> None:
    for service, state in snap.services.items():
        await conn.execute(
            "INSERT INTO cloud_services (cloud, service, state) VALUES (%s, %s, %s)"
            " ON CONFLICT (cloud, service) DO UPDATE SET state = excluded.state,"
            " checked_at = now()", (snap.cloud, service, state))
    if snap.services.get("identity") == "ok":
        # a full report: agents the cloud no longer lists are gone
        await conn.execute(
            "DELETE FROM cloud_services WHERE cloud = %s AND NOT service = ANY(%s)",
            (snap.cloud, list(snap.services)))


async def _record_parts(conn: psycopg.AsyncConnection, snap: Snapshot) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO cloud_sync (cloud, part, ok, detail, synced_at)"
            " VALUES (%s, %s, %s, %s, CASE WHEN %s THEN now() END)"
            " ON CONFLICT (cloud, part) DO UPDATE SET ok = excluded.ok,"
            " detail = excluded.detail, checked_at = now(),"
            " synced_at = coalesce(excluded.synced_at, cloud_sync.synced_at)",
            [(snap.cloud, part, snap.synced(part), snap.failed.get(part, "")[:500],
              snap.synced(part)) for part in PARTS])


async def _apply_alarms(conn: psycopg.AsyncConnection, snap: Snapshot,
                        wanted: dict[tuple[str, str], tuple[str, str]]) -> None:
    for (kind, subject), (severity, message) in wanted.items():
        await conn.execute(
            "INSERT INTO cloud_alarms (cloud, kind, subject, severity, message)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (cloud, kind, subject)"
            " WHERE state <> 'cleared' DO UPDATE SET count = cloud_alarms.count + 1,"
            " last_seen_at = now(), message = excluded.message",
            (snap.cloud, kind, subject, severity, message))
    # a condition is gone only if its source was read this time: a part that could not be
    # listed clears nothing, and without Keystone no other service's state is known
    kinds = [k for k, part in ALARM_SOURCE.items() if snap.synced(part)]
    if snap.services.get("identity") == "ok":
        kinds.append("service_down")
    current = [f"{k}|{s}" for k, s in wanted]
    await conn.execute(
        "UPDATE cloud_alarms SET state = 'cleared', cleared_at = now() WHERE cloud = %s"
        " AND state <> 'cleared' AND kind = ANY(%s) AND NOT (kind || '|' || subject) = ANY(%s)",
        (snap.cloud, kinds, current))
