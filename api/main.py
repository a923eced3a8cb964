"""The FastAPI app factory: `uvicorn --factory api.main:create_app` or `cityops api`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.console import install_console
from api.docs import install_docs
from api.errors import install_error_handlers
from api.guard import RequestGuard
from api.headers import SecurityHeaders
from api.lean import LeanReads
from api.middleware import AuditAndMetering
from api.pool import DatabasePool
from api.routes import (
    access,
    alarms,
    analysis,
    audit,
    auth,
    cameras,
    catalogue,
    catalogue_registry,
    cloud,
    commands,
    dashboards,
    data_services,
    device_registry,
    devices,
    displays,
    economy,
    economy_depth,
    evaluation,
    event_categories,
    event_tasks,
    events,
    field,
    gateways,
    health,
    indicators,
    lineage,
    live,
    map,
    network,
    notifications,
    open311,
    panorama,
    previews,
    quality,
    readings,
    registry,
    reports,
    rules,
    security,
    standards,
    systems,
)
from api.runtime import run_services
from cityops.errors import ConfigError
from cityops.settings import Settings, load_settings


def create_app_from_env() -> FastAPI:
    """The factory each of several API worker processes calls (`cityops api` with
    CITYOPS_API_WORKERS > 1): settings and logging read again in the new process."""
    from cityops.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_levels)
    return create_app(settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    if len(settings.jwt_secret.get_secret_value()) < 32:
        raise ConfigError("CITYOPS_JWT_SECRET must be set to at least 32 characters")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = DatabasePool(  # back at once after a database outage (api/pool.py)
            settings.database_url.get_secret_value(), min_size=2, max_size=10, open=False,
            timeout=5,
        )
        await pool.open(wait=False)
        app.state.pool = app.state.read_pool = pool
        read_url = settings.database_read_url
        if read_url is not None:  # reads may go to a standby (docs/operations.md)
            app.state.read_pool = DatabasePool(read_url.get_secret_value(), min_size=1,
                                               max_size=10, open=False, timeout=5)
            await app.state.read_pool.open(wait=False)
        try:
            async with run_services(app, settings, pool):  # MQTT link, live hub, metering
                if settings.api_gc_freeze:
                    # what start-up made lives as long as the process: out of the garbage
                    # collector's walks, which stopped a process ~0.1-0.2 s over its
                    # ~190,000 objects on every full collection (issue #21, docs/api.md)
                    gc.collect()
                    gc.freeze()
                yield
        finally:
            if getattr(app.state, "previews", None) is not None:  # LibreOffice killed if running
                await app.state.previews.stop()
            if app.state.read_pool is not pool:
                await app.state.read_pool.close()
            await pool.close()

    app = FastAPI(
        title="CityOps API",
        version="0.1.0",
        description="Unified city operations: devices, readings, commands, events, cloud.",
        lifespan=lifespan,
        # FastAPI's built-in docs pages load their scripts from a CDN; none at run time here
        docs_url=None,
        redoc_url=None,
        # no OpenTelemetry here: FastAPI otherwise asks the global tracer, meter and logger
        # providers (environment lookups) on every request, ~3 % of a small read's CPU
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    # innermost: the hottest small GETs answered with the route's own checks, without
    # FastAPI's per-request machinery (api/lean.py); every layer below still sees them
    app.add_middleware(LeanReads, gets=(devices.LEAN_LATEST, readings.LEAN_LATEST_PAGE))
    app.add_middleware(RequestGuard)  # body limits, auth before bodies, 405, nosniff
    app.add_middleware(AuditAndMetering)  # outermost: it audits the guard's refusals too
    app.add_middleware(SecurityHeaders)  # CSP, framing, HSTS: on every answer
    install_docs(app)
    # Starlette tries the routes in order, one regular expression each: the hottest paths (map
    # tiles from every screen, latest readings) go first; a profile of the tile path found
    # route matching a fifth of a request when they came after ~200 others (docs/map.md)
    app.include_router(map.router)  # issue 16: the map
    for module in (health, auth, devices):
        app.include_router(module.router)
    for module in (registry, gateways, device_registry, readings, commands, alarms, live,
                   access):  # issue 5: the API facade
        app.include_router(module.router)
    for module in (events, open311, catalogue, dashboards, economy):  # issue 7
        app.include_router(module.router)
    app.include_router(event_tasks.router)  # issue 18: co-handling (协办) and 催办
    app.include_router(field.router)  # issue 18: 城管通, the field app's routes
    app.include_router(analysis.router)  # issue 17: event analysis
    app.include_router(evaluation.router)  # issue 17: 城市综合管理服务评价
    app.include_router(economy_depth.router)  # issue 17: the industrial economy in depth
    app.include_router(indicators.router)  # issue 17: the indicator system and hub
    app.include_router(reports.router)  # issue 17: 城市运行分析报告
    app.include_router(cloud.router)  # issue 6: cloud control
    app.include_router(systems.router)  # issue 14: 数据汇聚
    app.include_router(audit.router)  # issue 19: the audit log's export
    app.include_router(security.router)  # issue 19: second factor, roles, lockouts
    app.include_router(displays.router)  # issues 18/19: walls, sessions, 等保
    app.include_router(data_services.router)  # issue 15: 数据服务, the service hub
    app.include_router(lineage.router)  # issue 15: 数据血缘
    app.include_router(standards.router)  # issue 15: 数据元 and code tables
    app.include_router(catalogue_registry.router)  # issue 15: 一本账, 公共数据资源登记
    app.include_router(panorama.router)  # issue 15: 数据全景
    app.include_router(quality.router)  # issue 15: 数据质量
    app.include_router(notifications.router)  # issue 18: notifications
    app.include_router(cameras.router)  # issue 20: cameras, snapshots, the video wall
    app.include_router(network.router)  # issue 20: the network page (topology, ports)
    app.include_router(rules.router)  # issue 18: alarm rules from the console
    app.include_router(event_categories.router)  # issue 18: categories and time limits
    app.include_router(previews.router)  # issue 18: office files previewed as PDF

    install_console(app)  # issue 8: the console at / (built by `make web`)

    return app
