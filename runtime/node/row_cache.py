"""The rows a database's only writer last read, kept in memory and amended by its later writes, so that
reading one back costs no statement.

A reader keeps the row it fetched (`keep`); a write amends a kept row with the values it wrote (`amend`:
nothing if the row is not kept: the next read fetches it) or forgets it; a rolled-back transaction clears
the cache. Only the most recent `size` keys are kept (none with size 0).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Row = TypeVar("Row", bound="DataclassInstance")


class RowCache(Generic[Row]):
    """Rows (frozen dataclasses) by key; at most `size` of them, the oldest kept going first."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._rows: dict[str, Row] = {}

    def get(self, key: str) -> Row | None:
        """The row kept under `key`, or None if none is kept (not: none exists)."""
        return self._rows.get(key)

    def keep(self, key: str, row: Row) -> None:
        self._rows.pop(key, None)
        self._rows[key] = row
        if len(self._rows) > self._size:
            del self._rows[next(iter(self._rows))]

    def amend(self, key: str, **changes: Any) -> None:
        """Apply a write's new values (by field name) to the row kept under `key`, if one is."""
        row = self._rows.get(key)
        if row is not None:
            self._rows[key] = dataclasses.replace(row, **changes)

    def forget(self, key: str) -> None:
        self._rows.pop(key, None)

    def clear(self) -> None:
        self._rows.clear()
