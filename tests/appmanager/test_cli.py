"""`taskapi apps` through the real command group, on real data dirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from runtime.cli import main

from .descriptors import WriteDescriptor, wasm_descriptor


def taskapi(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"TASKAPI_DATA_DIR": str(data_dir)})


def listed(data_dir: Path) -> dict[str, Any]:
    result = taskapi(data_dir, "apps", "list", "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def enabled_by_name(data_dir: Path) -> dict[str, list[bool]]:
    states: dict[str, list[bool]] = {}
    for app in listed(data_dir)["apps"]:
        states.setdefault(app["name"], []).append(app["enabled"])
    return states


def test_disable_and_enable_a_shipped_app_round_trip(data_dir: Path) -> None:
    assert all(enabled_by_name(data_dir)["tutorialapp"])
    result = taskapi(data_dir, "apps", "disable", "tutorialapp")
    assert result.exit_code == 0 and "disabled tutorialapp" in result.stdout
    assert not any(enabled_by_name(data_dir)["tutorialapp"])
    refused = taskapi(data_dir, "run", "tutorialapp", "--env", "local", "--set", "input=x")
    assert refused.exit_code == 2 and "app 'tutorialapp' is disabled" in refused.output
    assert taskapi(data_dir, "apps", "enable", "tutorialapp").exit_code == 0
    assert all(enabled_by_name(data_dir)["tutorialapp"])


def test_add_then_enable_by_id_prefix_then_show(data_dir: Path, write_descriptor: WriteDescriptor) -> None:
    path = write_descriptor(wasm_descriptor(parameters={"n": {"type": "integer", "default": 3}}))
    added = taskapi(data_dir, "apps", "add", str(path), "--json")
    assert added.exit_code == 0, added.output
    app = json.loads(added.stdout)
    assert app["name"] == "demo" and not app["enabled"] and not app["builtin"]
    enabled = taskapi(data_dir, "apps", "enable", app["id"][:10])
    assert enabled.exit_code == 0 and f"enabled demo 1.0.0 (wasm, {app['id'][:12]})" in enabled.stdout
    shown = taskapi(data_dir, "apps", "show", "demo", "--json")
    assert shown.exit_code == 0, shown.output
    (detail,) = json.loads(shown.stdout)
    assert detail["id"] == app["id"] and detail["enabled"]
    assert detail["descriptor"]["parameters"]["n"]["default"] == 3
    text = taskapi(data_dir, "apps", "show", "demo")
    assert text.exit_code == 0 and app["id"][:12] in text.stdout and "task parameters" in text.stdout


def test_add_refuses_a_bad_descriptor_naming_file_and_field(
    data_dir: Path, write_descriptor: WriteDescriptor
) -> None:
    path = write_descriptor(wasm_descriptor(environment="vm"))
    result = taskapi(data_dir, "apps", "add", str(path))
    assert result.exit_code == 1
    assert (
        f"{path}: environment: must be one of wasm, docker_cpu, docker_gpu, local, got 'vm'" in result.output
    )


def test_broken_descriptors_are_listed_with_their_problems(data_dir: Path) -> None:
    (data_dir / "apps").mkdir(parents=True)
    (data_dir / "apps" / "bad.json").write_text('{"name": "x"}')
    problems = listed(data_dir)["problems"]
    assert [Path(p["path"]).name for p in problems] == ["bad.json"]
    assert problems[0]["problems"] == [
        {
            "field": "environment",
            "message": "required field is missing (one of wasm, docker_cpu, docker_gpu, local)",
        }
    ]
    text = taskapi(data_dir, "apps", "list")
    assert text.exit_code == 0 and "bad.json: environment: required field is missing" in text.stderr


def test_unknown_app_errors_list_the_known_ones(data_dir: Path) -> None:
    for command in ("enable", "disable", "show"):
        result = taskapi(data_dir, "apps", command, "nope")
        assert result.exit_code == 1
        assert "unknown app 'nope'; known apps:" in result.output and "tutorialapp" in result.output


def test_data_dir_option_overrides_the_environment(tmp_path: Path, data_dir: Path) -> None:
    other = tmp_path / "other"
    result = taskapi(data_dir, "apps", "--data-dir", str(other), "disable", "tutorialapp")
    assert result.exit_code == 0
    assert (other / "appmanager.sqlite").is_file() and not data_dir.exists()
