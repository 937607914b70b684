"""The conformance report: JSON for machines (the provider's `--require-conformance`), rich for people."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

SUITE = "taskapi-conformance"
SUITE_VERSION = "1.0.0"

Status = Literal["passed", "failed", "not_exercised", "not_applicable"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppInfo(_Model):
    """What was tested: the app build's identity."""

    name: str
    version: str
    environment: str
    app_id: str
    digest: str
    digest_of: str


class PropertyResult(_Model):
    """One property's outcome; a failed one has the violation and Hypothesis's minimal failing example."""

    name: str
    statement: str
    status: Status
    checks: int
    message: str | None = None
    counterexample: str | None = None


class GroupResult(_Model):
    """One Hypothesis run (or several, when a failed property was disabled and the group ran again)."""

    name: str
    max_examples: int
    examples_run: int
    runs: int
    seconds: float
    note: str | None = None


class Report(_Model):
    suite: Literal["taskapi-conformance"] = "taskapi-conformance"
    suite_version: str = SUITE_VERSION
    app: AppInfo
    seed: int
    examples: int
    started_at: str
    seconds: float
    passed: bool
    properties: list[PropertyResult]
    groups: list[GroupResult]
    reproduce: str

    def failed(self) -> list[PropertyResult]:
        """The properties that did not pass (failed, or applicable but never exercised)."""
        return [p for p in self.properties if p.status in ("failed", "not_exercised")]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Report:
        """Load a report (ValueError says why a file is not one)."""
        try:
            return cls.model_validate_json(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is not a conformance report: {exc}") from exc


STYLES = {"passed": "green", "failed": "bold red", "not_exercised": "yellow", "not_applicable": "dim"}


def print_summary(report: Report, console: Console) -> None:
    """A table of every property, then each failure with its counterexample."""
    app = report.app
    console.print(
        f"[bold]{app.name} {app.version}[/] ({app.environment}) id {app.app_id[:16]} digest {app.digest[:23]}"
    )
    table = Table("property", "result", "checks", title=f"conformance suite {report.suite_version}")
    for prop in report.properties:
        table.add_row(
            prop.name, f"[{STYLES[prop.status]}]{prop.status.replace('_', ' ')}[/]", str(prop.checks)
        )
    console.print(table)
    groups = ", ".join(f"{g.name} {g.examples_run} examples {g.seconds:.0f} s" for g in report.groups)
    console.print(f"[dim]{groups}[/]")
    for prop in report.failed():
        console.rule(f"[bold red]{prop.name}[/]")
        console.print(prop.statement, style="dim")
        if prop.message:
            console.print(prop.message, markup=False, highlight=False)
        if prop.counterexample:
            console.print("minimal failing example:", style="bold")
            console.print(prop.counterexample, markup=False, highlight=False)
    verdict = (
        "[bold green]PASSED[/]"
        if report.passed
        else f"[bold red]FAILED[/] ({len(report.failed())} properties)"
    )
    console.print(f"{verdict} in {report.seconds:.0f} s, seed {report.seed}; reproduce: {report.reproduce}")
