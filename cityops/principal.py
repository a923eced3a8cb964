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
    # 三员分立 (等保 level 3, docs/security.md): `admin` is the system administrator (users,
    # configuration, every operational route); these two are admitted only where named
    SECURITY_ADMIN = "security_admin"  # roles, keys, displays, lockouts, second factors
    AUDIT_ADMIN = "audit_admin"  # reads and exports the audit log, nothing else
    # 监督员 (grid inspector, issue 18 城管通): reports from the street, checks closures on site
    INSPECTOR = "inspector"


ALL_ROLES = frozenset(Role)
# the roles of people doing the county's work: what "any role" admits (never the security or
# audit administrator, who do only their own duties)
SEPARATED_ROLES = frozenset({Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})
WORK_ROLES = frozenset(Role) - SEPARATED_ROLES




@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    kind: str = "user"  # or "api_key", or "display" (a wall's read-only token)
    key_id: int | None = None
    # an API key's scope: route patterns ("GET /v1/readings/*") and departments (None: all)
    routes: tuple[str, ...] = ()
    # the departments whose objects the caller may see and act on (None: every department):
    # an API key's own list, a department_staff user's department (api/identity.py)
    departments: frozenset[str] | None = None
    # a user's auth_version the token was issued under (migration 062)
    version: int = 0
    # the login session a person's access token belongs to (api/sessions.py); None for keys
    session: str | None = None
    # True only for a token that may do nothing but enrol a second factor (api/totp.py)
    enrol_only: bool = False

    def may_call(self, method: str, route: str) -> bool:
        if self.enrol_only:
            return route.startswith("/v1/auth/")
        if self.kind == "display":
            return method == "GET"  # a wall reads; it never acts
        if self.kind != "api_key":
            return True
        target = f"{method} {route}"
        return any(fnmatch.fnmatchcase(target, pattern) for pattern in self.routes)

    def sees_department(self, department: str | None) -> bool:
        return self.departments is None or department in self.departments
