"""Bodies of users, API keys, the audit log and API usage (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from cityops.principal import Role
from cityops.wire import Identifier

RoutePattern = Annotated[str, Field(
    pattern=r"^(\*|[A-Z]+) /\S*$", max_length=200,
    description="METHOD /path-template, shell-style wildcards: GET /v1/readings/*",
)]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Identifier = Field(examples=["li.wei"])
    password: SecretStr = Field(min_length=8, max_length=200)
    role: Role
    department: Identifier | None = None


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: SecretStr | None = Field(None, min_length=8, max_length=200)
    role: Role | None = None
    department: Identifier | None = None
    disabled: bool | None = None


class User(BaseModel):
    username: str
    role: Role
    department: str | None
    disabled: bool
    created_at: datetime


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "data-service", "role": "viewer", "routes": ["GET /v1/readings/*",
                                                             "GET /v1/devices/*"],
        "departments": ["water-resources"], "expires_in_days": 90}]})
    name: Identifier
    role: Role = Role.VIEWER
    routes: list[RoutePattern] = Field(min_length=1, max_length=50)
    departments: list[Identifier] | None = Field(
        None, description="devices of these departments only; null: every department")
    expires_in_days: int = Field(90, ge=1, le=730)


class ApiKey(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    role: Role
    routes: list[str]
    departments: list[str] | None
    expires_at: datetime
    revoked_at: datetime | None
    created_by: str
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="shown once: send it as X-API-Key")


class AuditEntry(BaseModel):
    id: int
    time: datetime
    actor: str
    actor_kind: str
    role: str | None
    action: str
    target: str
    source: str
    outcome: str
    status: int | None
    detail: dict[str, Any]
    # the hash chain (docs/security.md): what `GET /v1/audit/verify` names when it breaks
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None


class UsageRow(BaseModel):
    key: str
    method: str
    route: str
    calls: int
    errors: int = Field(description="answers with status 400 or more")
    p50_ms: float
    p99_ms: float
