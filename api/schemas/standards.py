"""数据元 and code tables (数据治理, DB33/T 2426 attributes)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ElementOut(BaseModel):
    id: str              # 标识符
    name_zh: str         # 中文名称
    name_en: str         # 英文名称
    definition: str      # 定义
    data_type: str       # 数据类型
    data_format: str     # 数据格式
    value_domain: str    # 值域
    code_table: str | None
    sensitivity: int     # 敏感级别 0-3
    mask_kind: str
    unit: str            # 计量单位
    source_org: str      # 来源机构
    synonyms: list[str]  # 同义名称
    version: str         # 版本
    fields: int          # dataset fields mapped to it


class ModelRunOut(BaseModel):
    id: int
    state: str           # running, succeeded, failed, skipped
    version: int
    rows_in: int
    rows_out: int
    rows_rejected: int
    unmapped: dict[str, list[str]] | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class LayerModelOut(BaseModel):
    name: str
    layer: str           # standard or topic
    target: str
    upstream: list[str]
    version: int         # as declared in its file
    digest: str          # sha256 of the file
    loaded_at: datetime
    department: str | None
    last_run: ModelRunOut | None


class CodeTableOut(BaseModel):
    id: str
    name: str
    standard: str
    version: str
    codes: int


class CodeValueOut(BaseModel):
    code: str
    name: str
    parent: str | None
    level: int


class CodeTableValuesOut(BaseModel):
    id: str
    name: str
    standard: str
    version: str
    values: list[CodeValueOut]
