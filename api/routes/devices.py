"""Device data: latest values and readings over time (raw or in time buckets), as JSON or
CSV; anyone logged in may read them, an API key only its departments' devices."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import Response

from api.deps import AnyRole, Caller, check_department
from api.device_answers import DeviceAnswers
from api.lean import LeanGet
from api.queries import buckets as qb
from api.queries import readings as q
from api.read_pool import AutocommitConn, autocommit
from api.schemas.readings import Bucket, DeviceLatest, RawReading, Readings
from api.services.export import to_csv
from cityops.errors import InvalidInput, NotFound
from cityops.principal import Principal
from cityops.wire import ID_PATTERN, Quality

router = APIRouter(tags=["readings"], dependencies=[AnyRole])
CSV_RESPONSE = {200: {"content": {"text/csv": {}}, "description": "with format=csv"}}
Format = Annotated[Literal["json", "csv"], Query(description="csv: one row per reading")]
QUALITIES = {0: Quality.GOOD, 1: Quality.UNCERTAIN, 2: Quality.BAD}
_BUCKET = re.compile(r"^(\d{1,6})(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_BUCKETS = 100_000
DeviceId = Annotated[str, Path(pattern=ID_PATTERN, examples=["meter-01"])]


def typed_value(data_type: str, value: float | str | None) -> bool | int | float | str | None:
    """Readings store numbers as float8: give bools and integers back their type."""
    if value is None or data_type in ("string", "float32", "float64"):
        return value
    if data_type == "bool":
        return bool(value)
    # a scaled integer register is a fraction in engineering units: keep it one; above 2**53
    # the stored double is not the device's integer (docs/wire.md#numbers): say so by
    # serving the double, not an int that looks exact
    if abs(value) > 2**53:  # type: ignore[arg-type]
        return value
    return int(value) if float(value).is_integer() else value


def parse_bucket(text: str) -> int:
    match = _BUCKET.match(text)
    if not match or int(match[1]) == 0:
        raise InvalidInput(f"bucket {text!r}: use a number and s, m, h or d, e.g. 1m")
    return int(match[1]) * _UNIT_S[match[2]]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def latest_answer(request: Request, caller: Principal, params: dict[str, str]) -> bytes:
    """The JSON of `DeviceLatest` for one device: what the route answers, and what the lean
    path (api/lean.py) answers for it without FastAPI's dependency solving; from this
    process's answers of the devices in use (api/device_answers.py: at most MAX_AGE_S old)."""
    device = params["device"]
    found = await device_answers(request.app).get(device)
    check_department(caller, found.department, f"device {device!r}")
    return found.body


def device_answers(app: FastAPI) -> DeviceAnswers:
    """This process's device answers (made on first use), fetched on the app's read pool."""
    found = getattr(app.state, "device_answers", None)
    if found is None:
        pool = app.state.pool

        async def fetch(devices: list[str]) -> dict[str, tuple[str | None, bytes]]:
            async with autocommit(pool) as conn:
                return {device: (department, encode_latest(device, points))
                        async for device, department, points in q.devices_latest(conn, devices)}

        found = app.state.device_answers = DeviceAnswers(fetch)
    return found


def encode_latest(device: str, points: list[tuple]) -> bytes:
    """`DeviceLatest` as pydantic encodes it (field order, times in UTC with 'Z', quality by
    name) from api/queries/readings.devices_latest's rows, written by orjson without
    building and validating the models (tests/unit/test_lean_encoding.py holds the two
    equal)."""
    return orjson.dumps({"device": device, "points": [
        {"point": point, "unit": unit, "value": typed_value(data_type, value), "time": at,
         "quality": None if quality is None else QUALITIES[quality]}
        for point, unit, data_type, at, value, quality in points]}, option=orjson.OPT_UTC_Z)


# Served by api/lean.py for GET (the route below keeps its OpenAPI entry, role check and
# HEAD): with the same checks, ~half of the API's CPU per request (docs/api.md)
LEAN_LATEST = LeanGet("/v1/devices/{device}/latest", {"device": ID_PATTERN}, latest_answer)


@router.get("/v1/devices/{device}/latest", response_model=DeviceLatest)
async def device_latest(request: Request, device: DeviceId, caller: Caller) -> Response:
    return Response(await latest_answer(request, caller, {"device": device}),
                    media_type="application/json")


def _buckets_json(head: Readings, bucket_s: int, buckets: bytes) -> Response:
    """The `Readings` shape around the buckets' JSON array (api/queries/readings.py
    buckets.buckets_json: closed periods come encoded from the cache): a day of 1-minute buckets is
    1,440 of them, and building and re-validating that many models cost more CPU than the
    query (`make bench-api`)."""
    body = orjson.dumps(head.model_dump(mode="json", exclude={"buckets"})
                        | {"bucket_s": bucket_s})
    return Response(body[:-1] + b',"buckets":' + buckets + b"}", media_type="application/json")


@router.get("/v1/devices/{device}/readings", response_model=Readings, responses=CSV_RESPONSE)
async def device_readings(
    request: Request,
    device: DeviceId,
    conn: AutocommitConn,
    caller: Caller,
    point: Annotated[str, Query(pattern=ID_PATTERN, examples=["voltage_l1"])],
    start: Annotated[datetime | None, Query(description="ISO 8601; default end - 1 h")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; default now")] = None,
    bucket: Annotated[str | None, Query(description="e.g. 10s, 1m, 1h", examples=["1m"])] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    format: Format = "json",
) -> Readings | Response:
    end = _utc(end) if end else datetime.now(UTC)
    start = _utc(start) if start else end - timedelta(hours=1)
    if start >= end:
        raise InvalidInput("start must be before end")
    watch = getattr(request.app.state, "rollup_watch", None)
    department, point_id, data_type, dirty = await qb.point_and_dirty(conn, device, point,
                                                                      watch)
    check_department(caller, department, f"device {device!r}")
    if point_id is None or data_type is None:
        raise NotFound(f"device {device!r} has no point {point!r}")
    result = Readings(device=device, point=point, start=start, end=end)
    if bucket is None:
        rows = await q.raw(conn, point_id, data_type == "string", start, end, limit)
        result.readings = [
            RawReading(time=t, value=typed_value(data_type, v), quality=QUALITIES[qual])
            for t, v, qual in rows
        ]
    else:
        bucket_s = parse_bucket(bucket)
        if data_type == "string":
            raise InvalidInput(f"point {point!r} holds text: buckets need numbers")
        if (end - start).total_seconds() / bucket_s > MAX_BUCKETS:
            raise InvalidInput(f"more than {MAX_BUCKETS} buckets: use a larger bucket")
        if format == "json":
            cache = None if watch is None else watch.cache
            return _buckets_json(result, bucket_s, await qb.buckets_json(
                conn, cache, point_id, bucket_s, start, end, dirty))
        rows = await q.bucketed(conn, point_id, bucket_s, start, end)
        result.bucket_s = bucket_s
        result.buckets = [Bucket(time=t, avg=a, min=lo, max=hi, count=n)
                          for t, a, lo, hi, n in rows]
    if format == "csv":
        return to_csv(result.readings or result.buckets or [],
                      f"{device}-{point}.csv", RawReading if bucket is None else Bucket)
    return result
