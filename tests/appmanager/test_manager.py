"""The app manager over real data dirs: shipped apps, added apps, enable/disable, and choosing a build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.appmanager import AppDisabled, AppManager, AppNotAvailable, DescriptorError, UnknownApp

from .descriptors import EMPTY_MODULE, WriteDescriptor, wasm_descriptor


def local_descriptor(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "demo",
        "version": "1.0.0",
        "environment": "local",
        "prerequisites": {"module": "apps.tutorialapp"},
    }
    return data | fields


def test_shipped_apps_are_found_enabled_and_all_load(data_dir: Path) -> None:
    inventory = AppManager(data_dir).inventory()
    assert inventory.problems == [], "\n".join(str(error) for error in inventory.problems)
    tutorial = [app for app in inventory.apps if app.name == "tutorialapp"]
    assert {app.environment for app in tutorial} >= {"local"}
    assert all(app.builtin and app.enabled for app in inventory.apps)
    assert not data_dir.exists(), "looking at apps must not write to the data dir"


def test_added_app_is_copied_with_its_module_and_disabled_until_enabled(
    manager: AppManager, write_descriptor: WriteDescriptor, data_dir: Path
) -> None:
    source = write_descriptor(wasm_descriptor())
    added = manager.add(source)
    assert not added.enabled and not added.builtin
    assert added.path.is_relative_to(data_dir / "apps") and added.module is not None
    assert added.module.read_bytes() == EMPTY_MODULE
    source.parent.joinpath("demo.wasm").unlink()
    with pytest.raises(AppDisabled, match="taskapi apps enable demo"):
        manager.resolve("demo")
    manager.enable(added.app_id)
    assert AppManager(data_dir, builtin_roots=()).resolve("demo").app_id == added.app_id


def test_adding_again_changes_nothing_but_may_enable(
    manager: AppManager, write_descriptor: WriteDescriptor, data_dir: Path
) -> None:
    first = manager.add(write_descriptor(wasm_descriptor()).parent)
    again = manager.add(write_descriptor(wasm_descriptor(), folder="copy"), enable=True)
    assert again.app_id == first.app_id and again.path == first.path and again.enabled
    assert len(list((data_dir / "apps").iterdir())) == 1


def test_an_invalid_descriptor_is_not_added(manager: AppManager, write_descriptor: WriteDescriptor) -> None:
    with pytest.raises(DescriptorError, match=r"prerequisites\.sha256"):
        manager.add(write_descriptor(wasm_descriptor(), module=b"other"))
    assert manager.inventory().apps == []


def test_hand_placed_descriptors_load_and_broken_ones_are_reported(
    manager: AppManager, data_dir: Path
) -> None:
    apps_dir = data_dir / "apps"
    apps_dir.mkdir(parents=True)
    (apps_dir / "demo.wasm").write_bytes(EMPTY_MODULE)
    (apps_dir / "demo.json").write_text(json.dumps(wasm_descriptor()))
    (apps_dir / "broken.json").write_text(json.dumps(wasm_descriptor(version=[1])))
    inventory = manager.inventory()
    assert [app.name for app in inventory.apps] == ["demo"]
    assert [error.path.name for error in inventory.problems] == ["broken.json"]
    with pytest.raises(
        UnknownApp, match=r"known apps: demo \(disabled\); 1 descriptor\(s\) could not be loaded"
    ):
        manager.resolve("other")


def test_default_build_prefers_wasm_and_env_picks_one(
    manager: AppManager, write_descriptor: WriteDescriptor
) -> None:
    local = manager.add(write_descriptor(local_descriptor(), folder="local"), enable=True)
    assert manager.resolve("demo").environment == "local"
    wasm = manager.add(write_descriptor(wasm_descriptor(), folder="wasm"), enable=True)
    assert manager.resolve("demo").app_id == wasm.app_id
    assert manager.resolve("demo", "local").app_id == local.app_id
    with pytest.raises(AppNotAvailable, match="no build for environment 'docker_cpu'; it has: local, wasm"):
        manager.resolve("demo", "docker_cpu")
    with pytest.raises(AppNotAvailable, match="unknown environment 'gpu'"):
        manager.resolve("demo", "gpu")
    manager.disable("demo", "wasm")
    assert manager.resolve("demo").app_id == local.app_id


def test_two_enabled_builds_for_one_environment_are_refused_naming_both(
    manager: AppManager, write_descriptor: WriteDescriptor
) -> None:
    one = manager.add(write_descriptor(local_descriptor(), folder="one"), enable=True)
    two = manager.add(write_descriptor(local_descriptor(version="2.0.0"), folder="two"), enable=True)
    with pytest.raises(AppNotAvailable, match="2 enabled builds") as caught:
        manager.resolve("demo")
    assert one.app_id[:12] in str(caught.value) and two.app_id[:12] in str(caught.value)
    manager.disable(one.app_id[:8])
    assert manager.resolve("demo").app_id == two.app_id


def test_lookup_by_name_id_or_id_prefix(manager: AppManager, write_descriptor: WriteDescriptor) -> None:
    app = manager.add(write_descriptor(local_descriptor()))
    assert [a.app_id for a in manager.find("demo")] == [app.app_id]
    assert [a.app_id for a in manager.find(app.app_id)] == [app.app_id]
    assert [a.app_id for a in manager.find(app.app_id[:6].upper())] == [app.app_id]
    with pytest.raises(UnknownApp, match="unknown app 'abc'"):
        manager.find("abc")


def test_disabling_a_shipped_app_by_name_disables_every_build_and_persists(data_dir: Path) -> None:
    changed = AppManager(data_dir).disable("tutorialapp")
    assert changed and not any(app.enabled for app in changed)
    fresh = AppManager(data_dir)
    assert not any(app.enabled for app in fresh.find("tutorialapp"))
    with pytest.raises(AppDisabled, match="app 'tutorialapp' is disabled"):
        fresh.resolve("tutorialapp")
    fresh.enable("tutorialapp")
    assert AppManager(data_dir).resolve("tutorialapp").enabled
