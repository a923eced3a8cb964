"""数据血缘 (issue 15): the lineage of one dataset or field, from the source system through
the raw, standard and topic layers to its catalogue resource and data service. Metadata, not
data: read across departments like the catalogue. Domain logic: datafoundation/governance/."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import Conn, require
from api.schemas.lineage import LineageOut
from cityops.principal import Principal, Role
from datafoundation.governance import graph

router = APIRouter(tags=["data governance"])
READERS = (Role.DATA_ADMIN, Role.DEPARTMENT_STAFF, Role.VIEWER)


@router.get("/v1/lineage", response_model=LineageOut,
            responses={422: {"description": "neither or both of dataset and field, or "
                             "malformed"}, 404: {"description": "no lineage recorded"}})
async def get_lineage(
        conn: Conn, caller: Annotated[Principal, Depends(require(*READERS))],
        dataset: Annotated[str | None, Query(max_length=130,
                                             examples=["topic.enterprises"])] = None,
        field: Annotated[str | None, Query(max_length=200,
                                           examples=["topic.enterprises.uscc"])] = None,
) -> dict:
    """Nodes and edges upstream to the source and downstream to the data service; `dataset`
    gives table-level lineage, `field` column-level."""
    return await graph.lineage(conn, dataset, field)
