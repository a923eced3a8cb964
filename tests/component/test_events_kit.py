"""Shared helpers for the city-operations tests (events, catalogue, dashboards, economy): an
in-process API on the session database with a settable clock, and people with roles and
departments. No tests here."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg
from fastapi.testclient import TestClient
from httpx import Response

from api.auth import hash_password
from api.main import create_app
from api.services.registry import add_user
from cityevents.calendar import COUNTY_TZ, now_utc
from cityops.principal import Role
from cityops.settings import Settings
from tests.api_kit import user_bearer

PASSWORD_HASH = hash_password("not-used-here")


def cst(*parts: int) -> datetime:
    """A moment in the county's time zone (Asia/Shanghai)."""
    return datetime(*parts, tzinfo=COUNTY_TZ)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Api:
    """Calls the API as a named person; people are created on first use."""

    def __init__(self, client: TestClient, settings: Settings, clock: Clock) -> None:
        self.client, self.settings, self.clock = client, settings, clock
        self.url = settings.database_url.get_secret_value()
        self.roles: dict[str, Role] = {}

    def department(self, dept: str, name: str | None = None) -> str:
        with psycopg.connect(self.url) as conn:
            conn.execute("INSERT INTO departments (id, name) VALUES (%s, %s)"
                         " ON CONFLICT DO NOTHING", (dept, name or dept))
        return dept

    def person(self, name: str, role: Role, department: str | None = None) -> str:
        add_user(self.url, name, PASSWORD_HASH, role.value)
        if department:
            self.department(department)
            with psycopg.connect(self.url) as conn:
                conn.execute("UPDATE users SET department_id = %s WHERE username = %s",
                             (department, name))
        self.roles[name] = role
        return name

    def headers(self, name: str) -> dict[str, str]:
        with psycopg.connect(self.url) as conn:
            return user_bearer(self.settings, conn, name)

    def call(self, name: str, method: str, path: str, **kwargs) -> Response:
        return self.client.request(method, path, headers=self.headers(name), **kwargs)

    def get(self, name: str, path: str, **kwargs) -> Response:
        return self.call(name, "GET", path, **kwargs)

    def post(self, name: str, path: str, **kwargs) -> Response:
        return self.call(name, "POST", path, **kwargs)

    def ok(self, name: str, method: str, path: str, status: int = 200, **kwargs) -> dict:
        res = self.call(name, method, path, **kwargs)
        assert res.status_code == status, f"{method} {path} as {name}: {res.text}"
        return res.json()


@contextmanager
def api_client(settings: Settings, start: datetime) -> Iterator[Api]:
    clock = Clock(start)
    app = create_app(settings)
    app.dependency_overrides[now_utc] = clock
    with TestClient(app) as client:
        yield Api(client, settings, clock)


def unique(prefix: str) -> str:
    """A name no other test module uses, so modules sharing the session database stay apart."""
    return f"{prefix}-{secrets.token_hex(3)}"
