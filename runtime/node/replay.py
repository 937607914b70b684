"""Replay of a journalled wasm subtask: re-run it and compare with what its provider claimed, bit for bit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtime.node.journal import DB_NAME, Entry, Journal, connect
from runtime.node.reexecute import Reexecutor, first_difference


@dataclass(frozen=True)
class ReplayReport:
    """The claim, the replay, and where they part."""

    subtask_id: str
    task_id: str
    provider_id: str
    app: str
    module_sha256: str
    seed: str
    verdict: str
    claimed_sha256: str | None
    claimed_fuel: int | None
    claimed_name: str | None
    replayed_sha256: str
    replayed_fuel: int
    replayed_name: str
    replayed_size: int
    first_difference: int | None
    """Byte offset of the first differing byte (None: same bytes, or no claimed file to compare)."""
    claimed_file_present: bool

    @property
    def output_equal(self) -> bool:
        return self.claimed_sha256 == self.replayed_sha256 and self.claimed_name == self.replayed_name

    @property
    def fuel_difference(self) -> int | None:
        return None if self.claimed_fuel is None else self.claimed_fuel - self.replayed_fuel

    @property
    def bit_exact(self) -> bool:
        return self.output_equal and self.fuel_difference == 0

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "output_equal": self.output_equal,
            "fuel_difference": self.fuel_difference,
            "bit_exact": self.bit_exact,
        }


def find_journal(data_dir: Path) -> Path:
    """The verification database of a requestor data dir (`requestor serve`), or of a `taskapi run` dir."""
    for candidate in (data_dir / DB_NAME, data_dir / "requestor" / DB_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {DB_NAME} in {data_dir} or {data_dir / 'requestor'}")


def load_entry(data_dir: Path, subtask_id: str) -> Entry:
    """The journal entry of a subtask (KeyError if the journal has none)."""
    db = connect(find_journal(data_dir), read_only=True)
    try:
        entry = Journal(db, create=False).get(subtask_id)
    finally:
        db.close()
    if entry is None:
        raise KeyError(subtask_id)
    return entry


async def replay(entry: Entry, reexecutor: Reexecutor) -> ReplayReport:
    """Re-run the subtask (`Unverifiable` if its module or inputs are gone) and compare with the claim."""
    claimed = Path(entry.output_path) if entry.output_path else None
    async with reexecutor.run(entry) as rerun:
        present = claimed is not None and claimed.is_file()
        offset = first_difference(claimed, rerun.output) if claimed is not None and present else None
        return ReplayReport(
            subtask_id=entry.subtask_id,
            task_id=entry.task_id,
            provider_id=entry.provider_id,
            app=entry.app_name,
            module_sha256=entry.module_sha256,
            seed=entry.seed,
            verdict=entry.verdict,
            claimed_sha256=entry.output_sha256,
            claimed_fuel=entry.fuel,
            claimed_name=claimed.name if claimed is not None else None,
            replayed_sha256=rerun.sha256,
            replayed_fuel=rerun.fuel,
            replayed_name=rerun.output.name,
            replayed_size=rerun.output.stat().st_size,
            first_difference=offset,
            claimed_file_present=present,
        )
