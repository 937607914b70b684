"""The apps the protocol tests run against: add one entry to test another app.

An app needs only a command that serves `<command> requestor|provider PORT [--host H] [--persistent]`
and a strategy of valid task parameters (small tasks, so that they finish within an example). Later
wasm apps are served as `[python, -m, environments.wasm, path/to/app.wasm]`, docker apps by theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from apps.sdk.process import python_app_command


@dataclass(frozen=True)
class AppUnderTest:
    name: str
    command: tuple[str, ...]
    task_params: st.SearchStrategy[dict[str, Any]]


TUTORIALAPP = AppUnderTest(
    name="tutorialapp",
    command=tuple(python_app_command("apps.tutorialapp")),
    task_params=st.fixed_dictionaries(
        {
            "input": st.text(max_size=8),
            # A few subtasks of a few hundred hashes each: tasks finish within an example, yet
            # several subtasks are in flight at once (difficulty 0 or 1 would finish at the first).
            "difficulty": st.integers(2, 8),
            "subtasks": st.integers(2, 4),
        }
    ),
)

APPS_UNDER_TEST = [TUTORIALAPP]
