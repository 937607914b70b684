"""The apps the protocol tests run against: add one entry to test another app.

An app needs only a command that serves `<command> requestor|provider PORT [--host H] [--persistent]`
and a strategy of valid task parameters (small tasks, so that they finish within an example). Wasm
apps are served as `[python, -m, environments.wasm, path/to/app.wasm]`, docker apps by theirs.

`TASKAPI_PROTOCOL_APPS` (comma-separated names, or `all`) picks the apps; the default is the fast
Python tutorialapp alone (the wasm one takes about four times as long per example).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from apps.sdk.process import python_app_command
from wasm_apps import module_path


@dataclass(frozen=True)
class AppUnderTest:
    name: str
    command: tuple[str, ...]
    task_params: st.SearchStrategy[dict[str, Any]]


# Proof of work: a few subtasks of a few hundred hashes each, so tasks finish within an example yet
# several subtasks are in flight at once (difficulty 0 or 1 would finish at the first).
POW_PARAMS = st.fixed_dictionaries(
    {"input": st.text(max_size=8), "difficulty": st.integers(2, 8), "subtasks": st.integers(2, 4)}
)

ALL_APPS = [
    AppUnderTest("tutorialapp", tuple(python_app_command("apps.tutorialapp")), POW_PARAMS),
    AppUnderTest(
        "wasm-tutorialapp",
        (sys.executable, "-m", "environments.wasm", str(module_path("tutorialapp"))),
        POW_PARAMS,
    ),
]


def selected_apps(names: str) -> list[AppUnderTest]:
    if names.strip() == "all":
        return ALL_APPS
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = wanted - {app.name for app in ALL_APPS}
    if unknown:
        raise ValueError(f"TASKAPI_PROTOCOL_APPS: unknown apps {sorted(unknown)}")
    return [app for app in ALL_APPS if app.name in wanted]


APPS_UNDER_TEST = selected_apps(os.environ.get("TASKAPI_PROTOCOL_APPS", "tutorialapp"))
