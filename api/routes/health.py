"""GET /v1/health: 200 when the database and the broker answer, 503 naming the one down."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from api.deps import get_pool, get_settings
from api.schemas.readings import Health
from cityops.errors import BrokerUnavailable
from cityops.mqtt import probe_broker
from cityops.settings import Settings
from cityops.tls import service_tls_context

router = APIRouter(tags=["health"])


async def _database(pool: AsyncConnectionPool) -> str:
    try:
        async with asyncio.timeout(3):
            async with pool.connection(timeout=3) as conn:
                await conn.execute("SELECT 1")
        return "ok"
    except Exception as err:
        return f"down: {type(err).__name__}: {err}"[:300]


async def _broker(settings: Settings) -> str:
    try:
        await probe_broker(
            settings.mqtt_url, settings.api_mqtt_username,
            settings.api_mqtt_password.get_secret_value(),
            tls_context=service_tls_context(settings, "api"),
        )
        return "ok"
    except BrokerUnavailable as err:
        return f"down: {err.detail}"[:300]


@router.get(
    "/v1/health", response_model=Health,
    responses={503: {"description": "a dependency is down", "model": Health}},
)
async def health(
    pool: Annotated[AsyncConnectionPool, Depends(get_pool)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> JSONResponse:
    database, broker = await asyncio.gather(_database(pool), _broker(settings))
    checks = {"database": database, "broker": broker}
    down = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ok" if not down else f"down: {', '.join(down)}", "checks": checks}
    if down:
        body |= {"code": "unavailable", "detail": f"{', '.join(down)} not answering"}
    return JSONResponse(body, status_code=503 if down else 200)
