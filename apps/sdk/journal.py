"""App state kept as a snapshot and a journal of changes, so a call writes what it changed, not everything.

`Journal(folder, name)` owns two files: `<name>.json`, a JSON object written whole (atomically, by
`save`), and `<name>.journal`, whose first line names the snapshot's generation and every later line is one
JSON change, appended and flushed to disk (`fsync`) before `append` returns. A reader applies the changes
to the snapshot. A journal naming another generation (a `save` cut short between its two files) holds
nothing the snapshot lacks and is ignored; an unfinished last line (a process killed mid-append) is skipped,
and cut off by the next writer (`repair`: only the one writer, whose calls come one at a time, can tell it
from an append in progress). `read_since` reads only what was appended after a `Position`, so state held
in memory stays current at a cost that does not grow with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apps.sdk.atomic_write import write_text_atomic

GENERATION = "generation"
"""The snapshot's key naming its generation (absent: 0)."""


class JournalCorrupt(ValueError):
    """A journal line that is not JSON."""


@dataclass
class Position:
    """How much of a journal a reader has applied: its header line and the bytes read (header included)."""

    header: bytes
    offset: int


class Journal:
    """A snapshot and its journal in `folder`, named `<name>.json` and `<name>.journal`."""

    def __init__(self, folder: Path, name: str) -> None:
        self.snapshot_path = folder / f"{name}.json"
        self.journal_path = folder / f"{name}.journal"

    def exists(self) -> bool:
        return self.snapshot_path.is_file()

    def save(self, snapshot: dict[str, Any], generation: int = 0) -> tuple[int, Position]:
        """Write `snapshot` whole as a new generation (above `generation` and the journal's) and start its
        journal, empty; the generation written and the journal's position."""
        generation = max(generation, self._journal_generation()) + 1
        write_text_atomic(self.snapshot_path, json.dumps({**snapshot, GENERATION: generation}))
        return generation, self._start(generation)

    def read(self, *, repair: bool) -> tuple[dict[str, Any], int, list[Any], Position | None]:
        """The snapshot (without its generation), its generation, the changes journalled since, and the
        journal's position (None: the snapshot has no journal yet). With `repair`, cut an unfinished last
        line off the journal."""
        snapshot: dict[str, Any] = json.loads(self.snapshot_path.read_text())
        generation = snapshot.pop(GENERATION, 0)
        try:
            data = self.journal_path.read_bytes()
        except FileNotFoundError:
            return snapshot, generation, [], None
        header = data.partition(b"\n")[0]
        if header != _header(generation):
            return snapshot, generation, [], None
        position = Position(header, len(header) + 1)
        return snapshot, generation, self._changes(data[position.offset :], position, repair=repair), position

    def read_since(self, position: Position) -> list[Any] | None:
        """The changes appended after `position` (which moves past them, an unfinished last line cut off);
        None when the journal is no longer the one read (a new snapshot was saved): read it whole."""
        try:
            with self.journal_path.open("rb") as journal:
                if journal.readline().rstrip(b"\n") != position.header:
                    return None
                journal.seek(position.offset)
                tail = journal.read()
        except FileNotFoundError:
            return None
        return self._changes(tail, position, repair=True)

    def start(self, generation: int) -> Position:
        """Give a snapshot of `generation` that has no journal of its own an empty one."""
        return self._start(generation)

    def append(self, changes: list[Any], position: Position) -> None:
        """Append `changes` (one JSON line each), flushed to disk; `position` moves past them."""
        if not changes:
            return
        lines = "".join(json.dumps(change, separators=(",", ":")) + "\n" for change in changes).encode()
        with self.journal_path.open("ab") as journal:
            journal.write(lines)
            journal.flush()
            os.fsync(journal.fileno())
        position.offset += len(lines)

    def _start(self, generation: int) -> Position:
        header = _header(generation)
        write_text_atomic(self.journal_path, header.decode() + "\n")
        return Position(header, len(header) + 1)

    def _journal_generation(self) -> int:
        try:
            with self.journal_path.open("rb") as journal:
                header = json.loads(journal.readline())
        except (FileNotFoundError, json.JSONDecodeError):
            return 0
        generation = header.get(GENERATION) if isinstance(header, dict) else None
        return generation if isinstance(generation, int) else 0

    def _changes(self, tail: bytes, position: Position, *, repair: bool) -> list[Any]:
        complete = tail[: tail.rfind(b"\n") + 1]
        changes = []
        for line in complete.splitlines():
            try:
                changes.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise JournalCorrupt(
                    f"{self.journal_path.name} has a line that is not JSON: {line[:200]!r}"
                ) from exc
        position.offset += len(complete)
        if repair and len(complete) < len(tail):
            with self.journal_path.open("r+b") as journal:
                journal.truncate(position.offset)
        return changes


def _header(generation: int) -> bytes:
    return json.dumps({GENERATION: generation}).encode()
