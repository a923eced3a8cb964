"""Latest values of many devices at once, chosen by site, department or profile."""

from __future__ import annotations

import asyncio
import gzip
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.content_coding import packed_or_plain
from api.deps import AnyRole, Caller
from api.lean import LeanGet, simple_query
from api.queries import readings as q
from api.read_pool import autocommit
from api.routes.device_registry import scoped
from api.schemas.readings import LatestPage
from api.shared_answers import SharedAnswers
from cityops.principal import Principal
from cityops.wire import ID_PATTERN

router = APIRouter(tags=["readings"], dependencies=[AnyRole])
Filter = Annotated[str | None, Query(pattern=ID_PATTERN)]
MAX_PAGE = 1000


@router.get("/v1/readings/latest", response_model=LatestPage)
async def latest_of_many(
    request: Request, caller: Caller,
    site: Filter = None, department: Filter = None, profile: Filter = None,
    gateway: Filter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="devices per page")] = MAX_PAGE,
    after: Annotated[str | None, Query(
        pattern=ID_PATTERN, description="the previous page's `next_after`")] = None,
) -> Response:
    """The latest value of every point of every device matching the filters, a page of
    devices at a time, ordered by device id: pages follow by keyset (`after`), so a deep
    page costs what the first does. Values come from the latest-value table that ingestion
    keeps (docs/ingestion.md), not from a search of the readings. Requests asking the
    same page within a second share one answer (api/shared_answers.py): values are at most
    1 s older than the database's."""
    return await latest_page(request, caller, {
        "site": site, "department": department, "profile": profile, "gateway": gateway,
        "limit": limit, "after": after})


async def latest_page(request: Request, caller: Principal, params: dict[str, Any]) -> Response:
    """The route's answer; also what the lean path (api/lean.py) answers for a GET whose
    query it parsed as the route declares it (LEAN_LATEST_PAGE)."""
    filters = scoped({"d.site_id": params["site"], "d.department_id": params["department"],
                      "d.profile_id": params["profile"], "d.gateway_id": params["gateway"]},
                     caller.departments)
    after, limit = params["after"], params["limit"]
    pool = request.app.state.pool

    async def compute() -> tuple[bytes, bytes]:
        async with autocommit(pool) as conn:
            items, total, next_after = await q.latest_page_json(conn, filters, after, limit)
        head = orjson.dumps({"total": total, "limit": limit, "next_after": next_after})
        body = b'{"items":' + items + b"," + head[1:]
        # once per answer, off the event loop (zlib lets go of the GIL): 0.5 MB at level 1
        # is ~2 ms and ~60 KB, sent to every client that accepts it instead of 0.5 MB
        return body, await asyncio.to_thread(gzip.compress, body, 1, mtime=0)

    key = (*sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.items()),
           after, limit)
    body, packed = await answers(request).get(key, compute)
    return packed_or_plain(request, packed, body, "application/json")


# the page the big screens poll, without FastAPI's per-request machinery (api/lean.py: its
# CPU per request was ~2.5 times one device's lean answer, docs/api.md)
LEAN_LATEST_PAGE = LeanGet("/v1/readings/latest", {}, latest_page, query=simple_query(
    dict.fromkeys(("site", "department", "profile", "gateway", "after"), ID_PATTERN),
    {"limit": (MAX_PAGE, 1, MAX_PAGE)}))


def answers(request: Request) -> SharedAnswers:
    """This process's shared answers (made on first use)."""
    state = request.app.state
    found = getattr(state, "latest_answers", None)
    if found is None:
        found = state.latest_answers = SharedAnswers()
    return found
