"""The API's errors in its OpenAPI document (issue #22, item 12).

Every error the API answers is `{"code", "detail"}` with a string detail (api/errors.py), but
FastAPI declares 422 as its own array form and nothing else. This declares, on every operation,
the statuses it can answer and the one schema they share, from what the app does:

- 401, 403 and 429 (too many failed attempts): operations that need a login;
- 404: operations with a path parameter (the named thing may not exist);
- 409: writes (a duplicate, a state that forbids it, a row still in use);
- 413: operations that take a body (api/guard.py limits); 422: operations taking input;
- 502: cloud operations (the cloud refused); 503: every operation (database or broker away).

A route's own declarations (a description of its 409, say) are kept, given the schema.
"""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object", "required": ["code", "detail"],
    "properties": {
        "code": {"type": "string", "examples": ["not_found"]},
        "detail": {"type": "string"},
        "rows": {"type": "array", "description": "an import's rejected rows, each with reasons",
                 "items": {"type": "object"}},
    },
}
DESCRIPTIONS = {
    "401": "not logged in, or the token or API key is not (or no longer) valid",
    "403": "role, department or API key scope does not allow it",
    "404": "a thing the path names does not exist",
    "409": "it contradicts the current state (exists already, in use, wrong state)",
    "413": "the body is over this route's limit",
    "422": "invalid input: the detail names the field",
    "429": "too many failed attempts: retry after the Retry-After header's seconds",
    "502": "the cloud refused or failed the request",
    "503": "the database, the broker or the cloud is unavailable",
}
WRITES = frozenset({"post", "put", "patch", "delete"})


def statuses(method: str, path: str, operation: dict[str, Any]) -> set[str]:
    """The error statuses this operation can answer."""
    found = {"503"}
    if not operation.get("x-public"):
        found |= {"401", "403", "429"}
    if "{" in path:
        found.add("404")
    if method in WRITES:
        found.add("409")
    if "requestBody" in operation:
        found |= {"413", "422"}
    if operation.get("parameters"):
        found.add("422")
    if "cloud" in operation.get("tags", ()):
        found.add("502")
    return found


def declare_errors(schema: dict[str, Any], extra: dict[tuple[str, str], set[str]]) -> None:
    """Declare the error statuses of every operation in `schema`, in place; `extra` adds
    statuses to one operation ((method, path) -> statuses) where the rules above miss one."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            wanted = statuses(method, path, operation) | extra.get((method, path), set())
            for status in wanted | {s for s in responses if s[:1] in "45"}:
                entry = responses.setdefault(status, {})
                if entry.get("description") in (None, "", "Validation Error"):  # FastAPI's
                    entry["description"] = DESCRIPTIONS.get(status, "error")
                entry["content"] = {"application/json": {"schema": ERROR_REF}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
