"""The registry finds environments through entry points and never crashes on a bad one."""

from __future__ import annotations

from importlib import metadata

import pytest

from environments.registry import ENTRY_POINT_GROUP, UnknownEnvironment, get_environment, list_environments
from environments.wasm import WasmEnvironment


def test_the_wasm_environment_is_installed_and_supported_here() -> None:
    [wasm] = [info for info in list_environments() if info.env_id == "wasm"]
    assert wasm.environment is WasmEnvironment
    assert wasm.support.supported and "wasmtime" in wasm.support.reason
    assert get_environment("wasm") is WasmEnvironment


def test_an_unknown_environment_is_refused_naming_the_installed_ones() -> None:
    with pytest.raises(UnknownEnvironment, match=r"unknown environment 'vax'; installed: .*wasm"):
        get_environment("vax")


def test_bad_entry_points_are_listed_as_unsupported_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = [
        metadata.EntryPoint("broken", "no_such_package.envs:Missing", ENTRY_POINT_GROUP),
        metadata.EntryPoint("impostor", "environments.wasm:WasmEnvironment", ENTRY_POINT_GROUP),
        metadata.EntryPoint("notenv", "environments.wasm:WasmRun", ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr("environments.registry.metadata.entry_points", lambda group: bad)
    reasons = {info.env_id: info.support.reason for info in list_environments()}
    assert "cannot load no_such_package.envs:Missing: ModuleNotFoundError" in reasons["broken"]
    assert "declares env_id 'wasm', not 'impostor'" in reasons["impostor"]
    assert "is not an Environment subclass" in reasons["notenv"]
    with pytest.raises(UnknownEnvironment, match="'broken' is not usable here: cannot load"):
        get_environment("broken")


def test_wasm_is_unsupported_on_a_cpu_wasmtime_cannot_compile_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("environments.wasm.environment.platform.machine", lambda: "mips")
    support = WasmEnvironment.support()
    assert not support.supported and "mips" in support.reason
