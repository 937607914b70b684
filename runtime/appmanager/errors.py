"""What goes wrong when loading descriptors or looking apps up; every message says what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a descriptor: the field (dotted path, "" for the file as a whole) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class DescriptorError(ValueError):
    """A descriptor file that cannot be used; names the file and every bad field."""

    def __init__(self, path: Path, problems: list[FieldProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


class AppNotAvailable(LookupError):
    """An app that cannot be used as asked (unknown, disabled, ambiguous, no such build); the message says
    why and lists the apps that can."""


class UnknownApp(AppNotAvailable):
    """No descriptor has this name or id."""


class AppDisabled(AppNotAvailable):
    """The app exists but none of its matching builds is enabled."""
