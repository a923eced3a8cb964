"""数据元, code tables and layer models (issue 15, 数据治理): the standards every governed dataset
is read against, loaded from governance/standards/ by `cityops governance load`, and the models
building the standard and topic layers with their last runs. Metadata, read across departments
(a rejected row's data is not served here). Domain logic: datafoundation/governance/."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import Conn, require
from api.schemas.standards import CodeTableOut, CodeTableValuesOut, ElementOut, LayerModelOut
from cityops.principal import Principal, Role
from datafoundation.governance import queries

router = APIRouter(tags=["data governance"])
Reader = Annotated[Principal, Depends(require(Role.DATA_ADMIN, Role.DEPARTMENT_STAFF,
                                              Role.VIEWER))]


@router.get("/v1/data-elements", response_model=list[ElementOut])
async def list_elements(conn: Conn, caller: Reader,
                        q: Annotated[str | None, Query(max_length=100, examples=["信用代码"])]
                        = None) -> list:
    """The 数据元 register (7 basic and the extended attributes); `q` matches the identifier,
    either name or a synonym."""
    return await queries.elements(conn, q)


@router.get("/v1/code-tables", response_model=list[CodeTableOut])
async def list_code_tables(conn: Conn, caller: Reader) -> list:
    return await queries.code_tables(conn)


@router.get("/v1/code-tables/{table_id}", response_model=CodeTableValuesOut,
            responses={404: {"description": "no such code table"}})
async def get_code_table(conn: Conn, caller: Reader,
                         table_id: Annotated[str, Path(max_length=63, examples=["xzqh"])]
                         ) -> dict:
    """A code table's values, e.g. 行政区划 (GB/T 2260) with 濉溪县's towns."""
    return await queries.code_table(conn, table_id)


@router.get("/v1/layer-models", response_model=list[LayerModelOut])
async def list_layer_models(conn: Conn, caller: Reader) -> list:
    """Each layer model's version as last loaded and its last run (rows in, out and rejected,
    source codes without a mapping, the error naming the dataset)."""
    return await queries.layer_models(conn)
