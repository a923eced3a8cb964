"""SNMP addressing, tables and endpoints as validated data (docs/profiles.md, README.md here).

Secrets never live in YAML: a community string or a v3 pass phrase comes from an environment
variable or a file; the config names which.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

OID_PATTERN = r"^\d+(\.\d+)+$"
Oid = Field(pattern=OID_PATTERN, description="a numeric OID, e.g. 1.3.6.1.2.1.1.3.0")
SnmpType = Literal["integer", "gauge", "counter32", "counter64", "timeticks", "string", "oid"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Where(_Model):
    """Keep only the rows whose `oid` column (same index) equals `equals`."""

    oid: str = Oid
    equals: str | int


class SnmpAddress(_Model):
    """Where a point's value comes from: one OID (GET), or a column reduced over its rows
    (walked with GETBULK): `mean` of hrProcessorLoad, or `ratio` of hrStorageUsed to
    hrStorageSize on the rows that are RAM."""

    oid: str | None = Field(None, pattern=OID_PATTERN)
    walk: str | None = Field(None, pattern=OID_PATTERN)
    reduce: Literal["mean", "sum", "min", "max", "count", "ratio", "first"] | None = None
    per: str | None = Field(None, pattern=OID_PATTERN, description="denominator of `ratio`")
    where: list[Where] = Field(default_factory=list, description="rows kept: all must match")
    equals: int | None = Field(None, description="a bool point: true when the value equals it")
    fallback: str | None = Field(None, pattern=OID_PATTERN,
                                 description="read instead where `oid` is missing (ifInOctets "
                                             "where ifHCInOctets is not implemented)")
    rate: bool = Field(False, description="a counter turned into a rate per second between "
                                          "polls (times the point's scale: 8 for octets to bits)")
    # rows of a walk whose index holds the row somewhere inside: lldpRemTable is indexed by
    # (timeMark, localPortNum, remIndex), so port 3's neighbour is the row with 3 at -2
    row: int | None = Field(None, ge=0)
    index_at: int | None = Field(None, description="which sub-identifier of the instance is "
                                                   "`row`, counted from the end (-1: the last)")

    @model_validator(mode="after")
    def _one_source(self) -> SnmpAddress:
        if (self.oid is None) == (self.walk is None):
            raise ValueError("give exactly one of `oid` and `walk`")
        if self.walk is not None and self.reduce is None:
            raise ValueError("`walk` needs `reduce`")
        if (self.reduce == "ratio") != (self.per is not None):
            raise ValueError("`per` is required for `reduce: ratio` and only for it")
        if self.oid is not None and (self.reduce or self.where):
            raise ValueError("`reduce` and `where` apply to `walk` only")
        if self.walk is not None and (self.rate or self.fallback):
            raise ValueError("`rate` and `fallback` apply to `oid` only")
        if (self.row is None) != (self.index_at is None) or (
                self.row is not None and self.walk is None):
            raise ValueError("`row` and `index_at` go together, with `walk`")
        return self


class TrapMapping(_Model):
    """A notification (its snmpTrapOID) as a reading: linkDown sets `port{index}.oper_up` to
    false, where {index} is the last sub-identifier of the varbind `index_of` (ifIndex)."""

    trap: str = Oid
    point: str = Field(pattern=r"^[a-z0-9][a-z0-9_.{}-]{0,62}$")
    value: bool | int | float | str
    index_of: str | None = Field(None, pattern=OID_PATTERN)

    @model_validator(mode="after")
    def _index_when_templated(self) -> TrapMapping:
        if ("{index}" in self.point) != (self.index_of is not None):
            raise ValueError("`index_of` is required when `point` has {index}, and only then")
        return self

    def point_for(self, varbinds: dict[str, object]) -> str | None:
        """The point this notification sets, or None when the index varbind is absent."""
        if self.index_of is None:
            return self.point
        prefix = self.index_of + "."
        for oid, value in varbinds.items():
            if oid == self.index_of:
                return self.point.replace("{index}", str(value))
            if oid.startswith(prefix):
                return self.point.replace("{index}", oid.rsplit(".", 1)[1])
        return None


class SnmpColumn(_Model):
    """One column of a table: a reading per row, named `<row>.<name>`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]{0,30}$")
    title: str = ""
    oid: str = Oid
    fallback: str | None = Field(None, pattern=OID_PATTERN)
    data_type: Literal["bool", "int32", "uint32", "int64", "uint64", "float32", "float64",
                       "string"] = "float64"
    unit: str = ""
    scale: float = 1.0
    rate: bool = False
    equals: int | None = None
    index_at: int | None = Field(None, description="the row is this sub-identifier of the "
                                                   "column's instances (LLDP: -2), not all "
                                                   "of it: the points walk the column")
    choices: dict[str, str] | None = None
    simulate: dict | None = Field(None, description="for the simulator: a rate point's rate")


class SnmpTable(_Model):
    """A conceptual table (ifTable, upsInputTable): rows are the declared indexes, so every
    point is known before the device answers (points are registered rows); a row the device
    lacks reads quality bad."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$", description="row prefix: port -> port1")
    rows: list[int] = Field(default_factory=list, max_length=4096)
    row_range: tuple[int, int] | None = Field(None, description="[first, last] index")
    columns: list[SnmpColumn] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_rows(self) -> SnmpTable:
        if bool(self.rows) == (self.row_range is not None):
            raise ValueError("give exactly one of `rows` and `row_range`")
        if self.row_range and not 0 <= self.row_range[0] <= self.row_range[1] < 2**31:
            raise ValueError("row_range is [first, last] with 0 <= first <= last")
        if self.row_range and self.row_range[1] - self.row_range[0] >= 4096:
            raise ValueError("row_range holds at most 4096 rows")
        return self

    def indexes(self) -> list[int]:
        if self.row_range is not None:
            return list(range(self.row_range[0], self.row_range[1] + 1))
        return list(self.rows)


class Secret(_Model):
    """A secret named by an environment variable or a file, never written in YAML."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env` and `file`")
        return self

    def read(self, what: str) -> str:
        if self.file is not None:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise ValueError(f"{what}: cannot read {self.file}: {err.strerror}") from err
        value = os.environ.get(self.env or "")
        if not value:
            raise ValueError(f"{what}: the environment variable {self.env} is not set")
        return value


class SnmpUser(_Model):
    """An SNMPv3 user with authentication and privacy (authPriv)."""

    username: str = Field(min_length=1, max_length=32)
    auth_protocol: Literal["SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5"] = "SHA"
    auth_key: Secret
    priv_protocol: Literal["AES", "AES192", "AES256", "DES"] = "AES"
    priv_key: Secret
    engine_id: str | None = Field(None, pattern=r"^(0x)?[0-9a-fA-F]{10,64}$",
                                  description="the sender's engine id, for v3 traps it sends")


class TrapListener(_Model):
    """Where the agent receives this device's traps and informs."""

    host: str = "127.0.0.1"
    port: int = Field(162, ge=1, le=65535)
    community: Secret | None = None
    users: list[SnmpUser] = []
    source: str | None = Field(None, description="the sender's address; default the endpoint's "
                                                 "host")

    @model_validator(mode="after")
    def _accepts_something(self) -> TrapListener:
        if self.community is None and not self.users:
            raise ValueError("traps need a `community` or v3 `users`")
        return self


class SnmpEndpoint(_Model):
    protocol: Literal["snmp"]
    host: str
    port: int = Field(161, ge=1, le=65535)
    version: Literal["2c", "3"] = "2c"
    community: Secret | None = None
    user: SnmpUser | None = None
    retries: int = Field(1, ge=0, le=5)
    max_repetitions: int = Field(25, ge=1, le=200, description="rows per GETBULK")
    oids_per_request: int = Field(32, ge=1, le=128, description="varbinds per GET")
    traps: TrapListener | None = None

    def missing_secrets(self) -> list[str]:
        """'<field>: why' for every community or key that cannot be read on this host."""
        named: list[tuple[str, Secret]] = []
        if self.community is not None:
            named.append(("community", self.community))
        users = [("user", self.user)] if self.user is not None else []
        if self.traps is not None:
            if self.traps.community is not None:
                named.append(("traps.community", self.traps.community))
            users += [(f"traps.users.{i}", u) for i, u in enumerate(self.traps.users)]
        for where, user in users:
            named += [(f"{where}.auth_key", user.auth_key), (f"{where}.priv_key", user.priv_key)]
        problems = []
        for field, secret in named:
            try:
                secret.read(field)
            except ValueError as err:
                problems.append(str(err))
        return problems

    @model_validator(mode="after")
    def _credentials(self) -> SnmpEndpoint:
        if self.version == "2c" and (self.community is None or self.user is not None):
            raise ValueError("version 2c needs `community` (and no `user`)")
        if self.version == "3" and (self.user is None or self.community is not None):
            raise ValueError("version 3 needs `user` (and no `community`)")
        return self


def expand_tables(data: object) -> object:
    """A profile's `tables` as the points they make, appended to `points` (before validation):
    column `in_bps` of table `port`, row 3 is point `port3.in_bps` at `<column oid>.3`. Points
    are then registered, polled and reported like any other."""
    if not isinstance(data, dict) or not data.get("tables"):
        return data
    points = list(data.get("points") or [])
    # a profile read back from the registry (model_dump) already holds its table points
    known = {p.get("name") for p in points if isinstance(p, dict)}
    for t_index, raw in enumerate(data["tables"]):
        try:
            table = SnmpTable.model_validate(raw)
        except ValueError as err:
            raise ValueError(f"tables.{t_index}: {err}") from err
        for row in table.indexes():
            points.extend(p for p in _row_points(table, row) if p["name"] not in known)
    return {**data, "points": points}


def _row_points(table: SnmpTable, row: int) -> list[dict]:
    made = []
    for col in table.columns:
        address: dict = {"oid": f"{col.oid}.{row}", "rate": col.rate}
        if col.index_at is not None:
            address = {"walk": col.oid, "reduce": "first", "row": row, "index_at": col.index_at}
        if col.fallback:
            address["fallback"] = f"{col.fallback}.{row}"
        if col.equals is not None:
            address["equals"] = col.equals
        point = {"name": f"{table.name}{row}.{col.name}", "data_type": col.data_type,
                 "unit": col.unit, "scale": col.scale, "address": address,
                 "title": f"{col.title or col.name} ({table.name} {row})"}
        for key in ("choices", "simulate"):
            if getattr(col, key):
                point[key] = getattr(col, key)
        made.append(point)
    return made
