"""The apps the protocol tests run against: add one entry to test another app.

An app is a build the app manager knows (its name and environment: a local Python package, a wasm module
served by `python -m environments.wasm`, a docker image), served the way `taskapi conformance` serves it,
and a strategy of task parameters it must accept (small tasks, so that they finish within an example).

`TASKAPI_PROTOCOL_APPS` (comma-separated names, or `all`) picks the apps; the default is the fast
Python tutorialapp alone (the wasm one takes about four times as long per example).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from runtime.appmanager import AppManager
from runtime.conformance.target import Target, target_of


@dataclass(frozen=True)
class AppUnderTest:
    """One build under test (`app` in environment `env`) and the task parameters it must accept."""

    name: str
    app: str
    env: str
    task_params: st.SearchStrategy[dict[str, Any]]

    def target(self) -> Target:
        """The build as the conformance suite tests it, resolved by the current data dir's app manager."""
        return target_of(AppManager().resolve(self.app, self.env))


# Proof of work: a few subtasks of a few hundred hashes each, so tasks finish within an example yet
# several subtasks are in flight at once (difficulty 0 or 1 would finish at the first).
POW_PARAMS = st.fixed_dictionaries(
    {"input": st.text(max_size=8), "difficulty": st.integers(2, 8), "subtasks": st.integers(2, 4)}
)

ALL_APPS = [
    AppUnderTest("tutorialapp", "tutorialapp", "local", POW_PARAMS),
    AppUnderTest("wasm-tutorialapp", "tutorialapp", "wasm", POW_PARAMS),
]


def selected_apps(names: str) -> list[AppUnderTest]:
    """The apps that `TASKAPI_PROTOCOL_APPS` names (ValueError for an unknown one)."""
    if names.strip() == "all":
        return ALL_APPS
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = wanted - {app.name for app in ALL_APPS}
    if unknown:
        raise ValueError(f"TASKAPI_PROTOCOL_APPS: unknown apps {sorted(unknown)}")
    return [app for app in ALL_APPS if app.name in wanted]


APPS_UNDER_TEST = selected_apps(os.environ.get("TASKAPI_PROTOCOL_APPS", "tutorialapp"))
