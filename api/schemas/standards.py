"""数据元 and code tables (数据治理, DB33/T 2426 attributes)."""

from __future__ import annotations

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
