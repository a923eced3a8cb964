"""HTTP JSON sources (e.g. the 12345 hotline's work orders): pages of records changed after
(updated_since, after_id), so a run resumes exactly where its last committed page ended.
The API must order records by (cursor, key); the source's settings name the parameters."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

from cityops.errors import SourceError, SourceUnavailable, SyncRejected
from datafoundation.sources import Column, Page

_TYPES = {bool: "boolean", int: "bigint", float: "double precision", str: "text"}


def _text(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


class HttpJsonSource:
    def __init__(self, name: str, settings: dict, credentials: dict[str, str]) -> None:
        self.name = name
        self.settings = settings
        self._token = credentials.get("password", "")
        self.timeout_s = float(settings.get("timeout_s", 30))

    def connect(self) -> None:
        """Nothing to open: each page is its own request."""

    def close(self) -> None:
        return

    def _get(self, path: str, params: dict) -> list[dict]:
        base = str(self.settings.get("base_url", ""))
        if not base.startswith(("http://", "https://")):
            raise SourceError(f"source {self.name}: base_url must be an http(s) URL")
        url = f"{base.rstrip('/')}{path}?{urlencode(params)}"
        # the scheme is checked just above: no file: or custom schemes
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        where = f"source {self.name}, endpoint {path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310
                kind, body = answer.headers.get("Content-Type", ""), answer.read()
        except urllib.error.HTTPError as err:
            kind = SourceError if err.code in (400, 401, 403, 404) else SourceUnavailable
            raise kind(f"{where}: answered HTTP {err.code}") from err
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise SourceUnavailable(f"{where}: cannot reach it: {getattr(err, 'reason', err)}"
                                    ) from err
        if "json" not in kind:
            raise SourceError(f"{where}: answered {kind or 'no content type'}, not JSON "
                              f"(first bytes: {body[:60].decode(errors='replace')!r})")
        try:
            items = json.loads(body)[self.settings.get("items_field", "items")]
        except (ValueError, KeyError, TypeError) as err:
            raise SourceError(f"{where}: the answer is not a JSON object with a list under "
                              f"{self.settings.get('items_field', 'items')!r}") from err
        return items

    def columns(self, table: str) -> list[Column]:
        """From the first record (a record type per field; nested values become text)."""
        items = self._get(table, {self.settings.get("limit_param", "limit"): 1})
        if not items:
            raise SourceError(f"source {self.name}, endpoint {table}: no records to learn the "
                              "fields from")
        return [Column(k, _TYPES.get(type(v), "text")) for k, v in items[0].items()]

    def null_rows(self, table: str, columns: list[Column], column: str, keys: list[str],
                  limit: int = 10000) -> list[tuple]:
        return []  # seen per record while reading (read() refuses a record without one)

    def keys(self, table: str, keys: list[str]) -> list[tuple]:
        raise SyncRejected(f"source {self.name}, endpoint {table}: deletes by key comparison "
                           "need a table source; use a soft-delete field")

    def read(self, table: str, columns: list[Column], keys: list[str], cursor: str | None,
             after: Page, batch_rows: int) -> Iterator[list[tuple]]:
        if len(keys) != 1:
            raise SyncRejected(f"source {self.name}, endpoint {table}: an HTTP source pages "
                               f"after one key field, not {len(keys)}")
        key = keys[0]
        if cursor is None:
            raise SyncRejected(f"source {self.name}, endpoint {table}: an HTTP source needs "
                               "an incremental sync with a cursor field")
        s = self.settings
        names = [c.name for c in columns]
        page = after
        while True:
            items = self._get(table, {
                s.get("since_param", "updated_since"): page.cursor or "",
                s.get("after_param", "after_id"): page.key[0] if page.key else "",
                s.get("limit_param", "limit"): batch_rows})
            if not items:
                return
            known = set(names)
            for item in items:
                if not known.issuperset(item):
                    # fields are learnt from the first record; dropping others would lose data
                    raise SyncRejected(
                        f"source {self.name}, endpoint {table}: record {key}={item.get(key)!r}"
                        f" has fields {sorted(set(item) - known)} the first record lacks")
            # a record without a cursor is set aside by the runner; paging goes on after the
            # last record that has one
            yield [tuple(_text(item.get(n)) for n in names) for item in items]
            dated = [item for item in items if item.get(cursor) is not None]
            if not dated and len(items) == batch_rows:
                raise SyncRejected(f"source {self.name}, endpoint {table}: a whole page of "
                                   f"records without {cursor}: cannot page past them")
            if dated:
                page = Page(str(dated[-1][cursor]), (dated[-1][key],))
            if len(items) < batch_rows:
                return
