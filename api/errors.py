"""One error shape everywhere: {"code": ..., "detail": ...} with the status that fits."""

from __future__ import annotations

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from cityops import errors

STATUS = {
    errors.AuthError: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.InvalidInput: 422,
    errors.ConfigError: 422,
    errors.DeviceRejected: 502,
    errors.DeviceUnreachable: 503,
    errors.SinkUnavailable: 503,
    errors.BrokerUnavailable: 503,
    errors.StackError: 503,
    # the cloud answered no (409: the project's quota), or did not answer at all
    errors.QuotaExceeded: 409,
    errors.ProviderUnavailable: 503,
    errors.CloudError: 502,
}
_HTTP_CODES = {
    401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 422: "invalid_input", 503: "unavailable",
}


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def _status_of(err: errors.PlatformError) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


# context an error may carry to the client besides code and detail (e.g. a CSV import's
# per-row report); everything else in `context` stays server-side
PUBLIC_CONTEXT = ("rows",)


async def _platform(_request: Request, err: errors.PlatformError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(err, errors.AuthError) else None
    body: dict[str, object] = error_body(err.code, err.detail)
    body |= {k: err.context[k] for k in PUBLIC_CONTEXT if k in err.context}
    return JSONResponse(body, _status_of(err), headers=headers)


async def _validation(_request: Request, err: RequestValidationError) -> JSONResponse:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"] if p not in ("body",))
        parts.append(f"{where}: {e['msg']}")
    return JSONResponse(error_body("invalid_input", "; ".join(parts)), 422)


async def _http(_request: Request, err: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(err.status_code, "http_error")
    return JSONResponse(error_body(code, str(err.detail)), err.status_code, headers=err.headers)


async def _database_down(_request: Request, err: Exception) -> JSONResponse:
    return JSONResponse(error_body("unavailable", f"database unavailable: {type(err).__name__}"),
                        503)


async def _bad_data(_request: Request, err: psycopg.DataError) -> JSONResponse:
    # the database refused a value the request carried (a NUL byte, a number out of range):
    # the caller's input, not our fault; the message names the value's problem, not the SQL
    first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
    return JSONResponse(error_body("invalid_input", f"invalid value: {first_line}"), 422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(psycopg.DataError, _bad_data)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.OperationalError, _database_down)
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(errors.PlatformError, _platform)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
