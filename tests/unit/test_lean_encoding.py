"""api/lean.py's pure parts: one device's latest encoded by orjson exactly as pydantic
encodes `DeviceLatest` (what FastAPI answered before), and a route is taken over only when
the lean path runs everything its dependencies do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from fastapi import Depends, FastAPI

from api.deps import AnyRole, Caller
from api.lean import LeanGet, _prepare
from api.routes.devices import encode_latest
from api.schemas.readings import DeviceLatest
from cityops.errors import ConfigError
from cityops.wire import ID_PATTERN

TIMES = [datetime(2026, 12, 3, 14, 51, 12, 404456, tzinfo=ZoneInfo("Etc/UTC")),
         datetime(2026, 12, 3, 14, 51, 12, tzinfo=UTC),
         datetime(2026, 12, 3, 22, 51, 12, 5, tzinfo=ZoneInfo("Asia/Shanghai")),
         datetime(2026, 12, 3, 9, 0, tzinfo=timezone(timedelta(hours=-5))), None]
# (data type, stored value): floats kept, integer types as integers while exact, bools,
# text, nothing yet, values JSON cannot hold
VALUES = [("float32", 231.25), ("float64", 1.0), ("float64", 1.5e300), ("float64", 0.1),
          ("float64", -0.0), ("float64", float("inf")), ("float64", float("nan")),
          ("uint16", 80.0), ("int64", 2.0**60), ("int32", -3.5), ("bool", 1.0),
          ("bool", 0.0), ("string", "开 on"), ("uint16", None)]


@pytest.mark.parametrize("at", TIMES)
def test_encoded_as_pydantic_encodes_the_model(at: datetime | None) -> None:
    rows = [{"point": f"p{i}", "unit": "V" if i % 2 else "", "data_type": data_type,
             "value": value, "time": at, "quality": [0, 1, 2, None][i % 4]}
            for i, (data_type, value) in enumerate(VALUES)]
    from api.routes.devices import QUALITIES, typed_value

    model = DeviceLatest.model_validate({"device": "meter-01", "points": [
        {**r, "value": typed_value(r["data_type"], r["value"]),
         "quality": None if r["quality"] is None else QUALITIES[r["quality"]]} for r in rows]})
    points = [(r["point"], r["unit"], r["data_type"], r["time"], r["value"], r["quality"])
              for r in rows]
    assert encode_latest("meter-01", points) == model.model_dump_json().encode()
    assert encode_latest("bare", []) == b'{"device":"bare","points":[]}'


def _app(*extra: object) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/things/{thing}/latest", dependencies=[AnyRole, *extra])
    async def route(thing: str, caller: Caller) -> dict:
        return {}

    @app.get("/v1/open/{thing}")
    async def public(thing: str) -> dict:
        return {}

    return app


async def _answer(*_: object) -> bytes:
    return b"{}"


def test_a_route_is_taken_over_only_with_nothing_but_auth_and_its_role_check() -> None:
    lean = LeanGet("/v1/things/{thing}/latest", {"thing": ID_PATTERN}, _answer)
    ready = _prepare(_app(), lean)
    assert ready.check.allowed_roles  # type: ignore[attr-defined]
    assert ready.path.match("/v1/things/a-1/latest")["thing"] == "a-1"
    assert not ready.path.match("/v1/things/a/b/latest")

    def rate_limit() -> None:  # a dependency the lean path would not run
        pass

    with pytest.raises(ConfigError, match="rate_limit"):
        _prepare(_app(Depends(rate_limit)), lean)
    with pytest.raises(ConfigError, match="no role check"):
        _prepare(_app(), LeanGet("/v1/open/{thing}", {"thing": ID_PATTERN}, _answer))
    with pytest.raises(ConfigError, match="no such route"):
        _prepare(_app(), LeanGet("/v1/nothing/{x}", {"x": ID_PATTERN}, _answer))
    with pytest.raises(ConfigError, match="patterns"):
        _prepare(_app(), LeanGet("/v1/things/{thing}/latest", {"other": ID_PATTERN}, _answer))
