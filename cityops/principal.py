"""Who is calling, below every domain: the roles that gate routes and the caller's identity.

Domain packages (datafoundation, cityevents, ...) receive a Principal from the API and decide
with it; keeping it here, not in `api/`, lets them import it without importing the HTTP face.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPS_ENGINEER = "ops_engineer"
    FIELD_TECHNICIAN = "field_technician"
    OPERATOR = "operator"
    DISPATCHER = "dispatcher"
    DEPARTMENT_STAFF = "department_staff"
    VIEWER = "viewer"
    DATA_ADMIN = "data_admin"  # the county data bureau: systems, sources, syncs (数据汇聚)


ALL_ROLES = frozenset(Role)




@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    kind: str = "user"  # or "api_key"
    key_id: int | None = None
    # an API key's scope: route patterns ("GET /v1/readings/*") and departments (None: all)
    routes: tuple[str, ...] = ()
    # the departments whose objects the caller may see and act on (None: every department):
    # an API key's own list, a department_staff user's department (api/identity.py)
    departments: frozenset[str] | None = None
    # a user's auth_version the token was issued under (migration 062)
    version: int = 0

    def may_call(self, method: str, route: str) -> bool:
        if self.kind != "api_key":
            return True
        target = f"{method} {route}"
        return any(fnmatch.fnmatchcase(target, pattern) for pattern in self.routes)

    def sees_department(self, department: str | None) -> bool:
        return self.departments is None or department in self.departments
