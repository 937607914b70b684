"""Real descriptor files and modules on disk, and app managers over a fresh data dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.appmanager import AppManager

from .descriptors import EMPTY_MODULE, WriteDescriptor


@pytest.fixture
def write_descriptor(tmp_path: Path) -> WriteDescriptor:
    """Writes `<tmp>/<folder>/descriptor.json` (a dict as JSON, a str as is) and `demo.wasm` beside it."""

    def write(data: dict[str, Any] | str, folder: str = "src", module: bytes | None = EMPTY_MODULE) -> Path:
        where = tmp_path / folder
        where.mkdir(parents=True, exist_ok=True)
        if module is not None:
            (where / "demo.wasm").write_bytes(module)
        path = where / "descriptor.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
        return path

    return write


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def manager(data_dir: Path) -> AppManager:
    """An app manager that sees only its data dir (no shipped apps)."""
    return AppManager(data_dir, builtin_roots=())
