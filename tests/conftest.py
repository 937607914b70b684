"""Suite-wide fixtures: every test gets its own taskapi data dir, so no test reads or writes the user's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path_factory.mktemp("taskapi-data")
    monkeypatch.setenv("TASKAPI_DATA_DIR", str(data_dir))
    return data_dir
