"""Bodies of the 数据汇聚 routes: systems, sources, syncs, runs. A source's credentials are
accepted on creation and never returned (`has_credentials` says whether some are stored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

_IDENT = r"^[a-z][a-z0-9_]{0,62}$"


class SystemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$",
                      description="names the raw-layer schema raw_<slug>")
    name: str = Field(min_length=1, max_length=200)
    department: str
    purpose: str = ""
    vendor: str = ""
    deployment: Literal["onprem", "cloud"] = "onprem"
    database_kind: str = ""
    contact: str = ""
    dengbao_level: int | None = Field(None, ge=1, le=5, description="等保 level")
    status: Literal["active", "retired", "planned"] = "active"


class SystemPatch(BaseModel):
    """A system's details, changed; the slug stays (it names the raw-layer schema)."""
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    department: str | None = None
    purpose: str | None = None
    vendor: str | None = None
    deployment: Literal["onprem", "cloud"] | None = None
    database_kind: str | None = None
    contact: str | None = None
    dengbao_level: int | None = Field(None, ge=1, le=5)
    status: Literal["active", "retired", "planned"] | None = None


class SystemOut(BaseModel):
    id: int
    slug: str
    name: str
    department: str
    purpose: str
    vendor: str
    deployment: str
    database_kind: str
    contact: str
    dengbao_level: int | None
    status: str


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system_id: int
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["mariadb", "postgresql", "sqlalchemy", "file_drop", "sftp", "http_json"]
    settings: dict[str, Any] = Field(description="host, port, database, user...; no secrets")
    password: SecretStr | None = Field(None, description="stored encrypted, never returned")

    @model_validator(mode="after")
    def _no_secret_in_settings(self) -> SourceIn:
        for key in self.settings:
            if any(word in key.lower() for word in ("password", "secret", "token")):
                raise ValueError(f"settings.{key}: put credentials in `password`, "
                                 "which is stored encrypted")
        return self


class SourceOut(BaseModel):
    id: int
    system_id: int
    name: str
    kind: str
    settings: dict[str, Any]
    has_credentials: bool


class SourceTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str | None = Field(None, description="also read this table's columns")


class SourceTestOut(BaseModel):
    ok: bool
    error: str | None
    columns: list[str]


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_id: int
    object: str = Field(min_length=1, description="the source's table")
    target_table: str = Field(pattern=_IDENT)
    mode: Literal["full", "incremental", "cdc"] = Field(
        description="cdc: a MariaDB/MySQL binlog follower kept running by `cityops sync worker`")
    cursor_column: str | None = None
    primary_key: list[str] = Field(min_length=1, max_length=8,
                                   description="several columns: a composite key")
    deletes: Literal["none", "soft", "compare"] = "none"
    soft_delete_column: str | None = None
    contract: Literal["evolve", "freeze"] = "evolve"
    schedule: str | None = Field(None, description="cron, e.g. */15 * * * *")
    batch_rows: int = Field(50000, ge=1, le=1_000_000)
    split_ranges: int = Field(1, ge=1, le=32, description="a first load split by key ranges "
                              "into this many jobs (a single integer key)")

    @model_validator(mode="after")
    def _consistent(self) -> SyncIn:
        if self.mode == "incremental" and not self.cursor_column:
            raise ValueError("cursor_column: an incremental sync needs one")
        if self.deletes == "soft" and not self.soft_delete_column:
            raise ValueError("soft_delete_column: deletes=soft needs one")
        if self.schedule is not None:
            from croniter import croniter

            if not croniter.is_valid(self.schedule):
                raise ValueError(f"schedule: {self.schedule!r} is not a cron expression")
        return self


class SyncOut(BaseModel):
    id: int
    source_id: int
    object: str
    target_schema: str
    target_table: str
    mode: str
    cursor_column: str | None
    primary_key: list[str]
    deletes: str
    soft_delete_column: str | None
    contract: str
    schedule: str | None
    batch_rows: int
    split_ranges: int
    enabled: bool
    flagged: str | None


class RunQueued(BaseModel):
    job: int | None = Field(description="null: a run of this sync is already queued")


class SyncRunOut(BaseModel):
    id: int
    sync_id: int
    state: str
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    rows_written: int
    rows_deleted: int
    rows_quarantined: int
    rows_expected: int | None
    drift: dict[str, Any] | None
    error: str | None


class QuarantinedRow(BaseModel):
    id: int
    source: str
    source_table: str
    row: dict[str, Any]
    reason: str
    created_at: datetime
