"""One error shape everywhere: {"code": ..., "detail": ...} with the status that fits."""

from __future__ import annotations

import re

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
    errors.TooManyAttempts: 429,
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
    # a department system a sync reads (数据汇聚): refused, or not answering; a sync stopped
    errors.SourceUnavailable: 503,
    errors.SourceError: 502,
    errors.SyncRejected: 409,
}
_HTTP_CODES = {
    401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 422: "invalid_input", 503: "unavailable",
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


async def platform_error(_request: Request, err: errors.PlatformError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(err, errors.AuthError) else None
    if isinstance(err, errors.TooManyAttempts):
        headers = {"Retry-After": str(err.context.get("retry_after_s", 60))}
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


# PostgreSQL's own words for a broken constraint: 'Key (department_id)=(nope) is not present
# in table "departments".' / '... is still referenced from table "devices".' / '... already
# exists.'
_KEY = re.compile(r"^Key \((?P<columns>[^)]*)\)=\((?P<values>.*)\) (?P<rest>.*)$", re.DOTALL)


def integrity_error(err: psycopg.IntegrityError) -> tuple[int, dict[str, str]]:
    """The status and body for a constraint the database enforced: what the request named
    that does not exist or contradicts a stored row, by field and constraint, never the SQL."""
    diag = err.diag
    constraint = diag.constraint_name or "a constraint"
    key = _KEY.match(diag.message_detail or "")
    field = (key["columns"] if key else diag.column_name) or "value"
    field = field.removesuffix("_id")
    if isinstance(err, psycopg.errors.ForeignKeyViolation):
        if key and "still referenced" in key["rest"]:
            table = key["rest"].rsplit(" ", 1)[-1].strip('".')
            return 409, error_body("conflict", f"{field} {key['values']!r} is still used by "
                                               f"{table} ({constraint})")
        value = f" {key['values']!r}" if key else ""
        table = key["rest"].rsplit(" ", 1)[-1].strip('".') if key else "its table"
        return 422, error_body("invalid_input", f"{field}:{value} is not registered in {table} "
                                                f"({constraint})")
    if isinstance(err, psycopg.errors.UniqueViolation | psycopg.errors.ExclusionViolation):
        value = f" {key['values']!r}" if key else ""
        return 409, error_body("conflict", f"{field}:{value} exists already ({constraint})")
    if isinstance(err, psycopg.errors.NotNullViolation):
        return 422, error_body("invalid_input", f"{field}: a value is required")
    # a CHECK (or another) constraint: its name says which rule the row broke
    table = f" of {diag.table_name}" if diag.table_name else ""
    return 422, error_body("invalid_input", f"the request breaks the rule {constraint}{table}")


async def _integrity(_request: Request, err: psycopg.IntegrityError) -> JSONResponse:
    status, body = integrity_error(err)
    return JSONResponse(body, status)


async def _internal(_request: Request, _err: Exception) -> JSONResponse:
    # the last resort (Starlette's ServerErrorMiddleware, which then re-raises, so the server
    # logs the traceback): still the one error shape, and nothing of the exception itself,
    # which may quote SQL or values
    return JSONResponse(error_body("internal_error", "an internal error; see the API's log"),
                        500, headers={"X-Content-Type-Options": "nosniff"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _internal)
    app.add_exception_handler(psycopg.IntegrityError, _integrity)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.DataError, _bad_data)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.OperationalError, _database_down)
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(errors.PlatformError, platform_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
