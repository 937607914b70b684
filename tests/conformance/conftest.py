"""Fixtures of the conformance suite's tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .support import TESTS_DIR, build_stamped


@pytest.fixture(autouse=True)
def planted_apps_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """App servers run as `python -m conformance.planted.NAME`: the tests folder goes on PYTHONPATH, and on
    this process's path too, where the suite looks a planted app's package up to take its digest."""
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.syspath_prepend(str(TESTS_DIR))


@pytest.fixture(scope="session")
def stamped_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted wasm app, built once per session (CI installs the toolchain: scripts/build_wasm_apps)."""
    if shutil.which("clang") is None:
        pytest.fail("the wasm toolchain is missing: run scripts/build_wasm_apps, which installs it")
    return build_stamped(tmp_path_factory.mktemp("wasm") / "stamped.wasm")
