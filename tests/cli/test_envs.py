"""`taskapi envs list`: every registered environment, supported here or not and why, and its scores."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from click.testing import CliRunner

from environments.registry import ENTRY_POINT_GROUP
from runtime.cli import main


def envs_json(*args: str) -> dict[str, dict[str, object]]:
    result = CliRunner().invoke(main, ["envs", "list", "--json", *args], prog_name="taskapi")
    assert result.exit_code == 0, result.output
    return {row["env"]: row for row in json.loads(result.stdout)}


def test_every_registered_environment_is_listed_with_its_reason() -> None:
    rows = envs_json()
    assert set(rows) == {entry.name for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert rows["wasm"]["supported"] is True and "wasmtime" in str(rows["wasm"]["details"])
    for row in rows.values():
        assert isinstance(row["supported"], bool) and row["details"]
    gpu = rows["docker_gpu"]
    assert gpu["supported"] or "GPU" in str(gpu["details"]) or "Docker" in str(gpu["details"])


def test_each_environment_is_listed_with_its_declared_capabilities() -> None:
    rows = envs_json()
    assert rows["wasm"]["capabilities"] == ["deterministic", "metered"]
    assert rows["docker_gpu"]["capabilities"] == ["gpu", "network", "serves_apps"]
    assert rows["local"]["capabilities"] == ["serves_apps", "unsandboxed"]
    assert rows["local"]["supported"] is True and "no sandbox" in str(rows["local"]["details"])


def test_scores_stored_by_a_provider_are_shown(isolated_data_dir: Path) -> None:
    stored = isolated_data_dir / "provider" / "benchmarks.json"
    stored.parent.mkdir(parents=True)
    stored.write_text(json.dumps({"wasm": 1234.5}))
    rows = envs_json()
    assert rows["wasm"]["benchmark"] == 1234.5 and str(stored) in str(rows["wasm"]["benchmark_source"])
    assert rows["docker_gpu"]["benchmark"] is None


def test_benchmark_measures_supported_environments_now() -> None:
    rows = envs_json("--benchmark")
    score = rows["wasm"]["benchmark"]
    assert isinstance(score, float) and score > 0 and rows["wasm"]["benchmark_source"] == "measured now"
    for row in rows.values():
        if not row["supported"]:
            assert row["benchmark"] is None
