"""The event workflow as data: states, actions, who may take each, and the clock each state runs.

It follows the digitised urban-management loop of GB/T 30428 (see docs/city-operations.md):
监督中心 and 指挥中心 steps belong to `dispatcher`, 专业部门 steps to `department_staff` of the
department the event is dispatched to, approvals to a `dispatcher` other than the requester (or
`admin`). Side branches that need approval are requests: asked for by one role, approved or
refused by another; approval performs the transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cityops.principal import Role


class State(StrEnum):
    REPORTED = "reported"  # 上报 / 待受理
    VERIFYING = "verifying"  # 核实
    REGISTERED = "registered"  # 立案 (waiting for dispatch)
    DISPATCHED = "dispatched"  # 派遣 (waiting for the department to take it)
    PROCESSING = "processing"  # 处置
    FEEDBACK = "feedback"  # 反馈 (result submitted, waiting for a check)
    CHECKING = "checking"  # 核查
    CLOSED = "closed"  # 结案
    CANCELLED = "cancelled"  # 作废
    SUSPENDED = "suspended"  # 挂账 (the clocks stop)


TERMINAL = frozenset({State.CLOSED, State.CANCELLED})
OPEN_STATES = tuple(s for s in State if s not in TERMINAL)

# the step whose time limit runs while the event is in a state (event_time_limits.step)
STEP_OF_STATE: dict[State, str] = {
    State.REPORTED: "accept",
    State.VERIFYING: "verify",
    State.REGISTERED: "dispatch",
    State.DISPATCHED: "dispose",
    State.PROCESSING: "dispose",
    State.FEEDBACK: "check",
    State.CHECKING: "check",
}
STEPS = ("accept", "verify", "dispatch", "dispose", "check", "total")


@dataclass(frozen=True)
class Action:
    name: str
    sources: frozenset[State]
    target: State
    roles: frozenset[Role]
    # department_staff may act only on events dispatched to their own department
    department_scoped: bool = False


def _action(name: str, sources: set[State], target: State, *roles: Role, scoped: bool = False):
    return Action(name, frozenset(sources), target, frozenset({Role.ADMIN, *roles}), scoped)


D, S = Role.DISPATCHER, Role.DEPARTMENT_STAFF
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        _action("verify", {State.REPORTED}, State.VERIFYING, D),
        _action("register", {State.REPORTED, State.VERIFYING}, State.REGISTERED, D),
        _action("dispatch", {State.REGISTERED}, State.DISPATCHED, D),
        _action("accept", {State.DISPATCHED}, State.PROCESSING, S, scoped=True),
        _action("feedback", {State.PROCESSING}, State.FEEDBACK, S, scoped=True),
        _action("check", {State.FEEDBACK}, State.CHECKING, D),
        _action("close", {State.CHECKING}, State.CLOSED, D),
        _action("rework", {State.CHECKING}, State.PROCESSING, D),
        _action("resume", {State.SUSPENDED}, State.PROCESSING, D, S, scoped=True),
    )
}
# roles that may report an event (the channel is recorded separately)
REPORTER_ROLES = frozenset({Role.ADMIN, D, S, Role.OPERATOR, Role.FIELD_TECHNICIAN,
                            Role.INSPECTOR})
# 核查 on site (城管通): the 监督员 the 监督中心 sends while the event is checking
SITE_CHECK_ROLES = frozenset({Role.ADMIN, Role.INSPECTOR})
SUPERVISE_ROLES = frozenset({Role.ADMIN, D})


@dataclass(frozen=True)
class RequestKind:
    name: str
    sources: frozenset[State]
    # None: the state does not change (an extension moves the deadline only)
    target: State | None
    requester_roles: frozenset[Role]
    department_scoped: bool


REQUESTS: dict[str, RequestKind] = {
    "cancel": RequestKind(
        "cancel", frozenset({State.REPORTED, State.VERIFYING, State.REGISTERED}),
        State.CANCELLED, frozenset({Role.ADMIN, D}), False,
    ),
    "suspend": RequestKind(
        "suspend", frozenset({State.PROCESSING}), State.SUSPENDED,
        frozenset({Role.ADMIN, S}), True,
    ),
    "extend": RequestKind(
        "extend", frozenset({State.DISPATCHED, State.PROCESSING}), None,
        frozenset({Role.ADMIN, S}), True,
    ),
    "return": RequestKind(
        "return", frozenset({State.DISPATCHED, State.PROCESSING}), State.REGISTERED,
        frozenset({Role.ADMIN, S}), True,
    ),
}
APPROVER_ROLES = frozenset({Role.ADMIN, D})


def open311_status(state: str) -> str:
    """GeoReport v2 knows only open and closed."""
    return "closed" if state in TERMINAL else "open"
