"""Hostile input at the node/environment boundary (issue 13): environment ids the provider does not have,
in assignments from a requestor; hostile `environment` values in descriptors; entry points that claim an
id another one has; journalled subtasks of environments that cannot re-run them; app payloads whose module
path leaves the descriptor's folder, handed to an environment to serve.

Each case asserts the named refusal and that the same object still admits an honest input afterwards.
Nothing here reads or writes outside the test's own temporary folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from environments.app_serving import AppPayload, CommandServing
from environments.base import PrerequisitesRefused
from environments.registry import ENTRY_POINT_GROUP, UnknownEnvironment, environment_class, list_environments
from protos import node_pb2 as npb
from runtime.appmanager import AppManager, DescriptorError, load_descriptor
from runtime.node.journal import Entry
from runtime.node.provider import Refused, Whitelist
from runtime.node.reexecute import Reexecutor, Unverifiable
from runtime.serving import payload_of

MODULE_SHA256 = "ab" * 32


def wasm_assignment(env_id: str) -> npb.Assignment:
    message = npb.Assignment(task_id="t", subtask_id="s", app_id="a", app_name="demo", env_id=env_id)
    message.app_module.sha256 = MODULE_SHA256
    return message


@pytest.mark.parametrize(
    "env_id",
    [
        "",
        "WASM",
        "wasm ",
        " wasm",
        "wasm\n",
        "wasm\x00",
        "../wasm",
        "docker",
        "plugged_wasm",
        "é" * 64,
        "x" * 70_000,
    ],
)
def test_an_assignment_in_an_environment_not_installed_is_refused(env_id: str) -> None:
    whitelist = Whitelist(wasm_modules={MODULE_SHA256}, local_apps={"demo"})
    with pytest.raises(Refused, match="is not enabled here") as caught:
        whitelist.check(wasm_assignment(env_id))
    assert len(str(caught.value)) < 200  # a huge id is cut, not echoed
    whitelist.check(wasm_assignment("wasm"))  # the honest one still passes


def descriptor(environment: Any) -> dict[str, Any]:
    return {
        "name": "demo",
        "version": "1.0",
        "environment": environment,
        "prerequisites": {"module": "apps.x"},
    }


@pytest.mark.parametrize(
    "environment",
    [
        None,
        5,
        True,
        [],
        ["local"],
        {"id": "local"},
        "",
        "LOCAL",
        "local\x00",
        "../local",
        "x" * 100_000,
        "environments.local:LocalEnvironment",
    ],
)
def test_a_descriptor_naming_no_installed_environment_is_refused(environment: Any, tmp_path: Path) -> None:
    path = tmp_path / "descriptor.json"
    path.write_text(json.dumps(descriptor(environment)))
    with pytest.raises(DescriptorError) as caught:
        load_descriptor(path)
    message = str(caught.value)
    assert "environment: must be one of wasm, docker_cpu, docker_gpu, local, got" in message
    assert len(message) < 400  # a huge value is cut, not echoed
    path.write_text(json.dumps(descriptor("local")))
    assert load_descriptor(path).environment == "local"


@pytest.mark.parametrize(
    "claims",
    [
        ["environments.wasm:WasmEnvironment", "taskapi_evil:Wasm"],
        ["taskapi_evil:Wasm", "environments.wasm:WasmEnvironment", "environments.wasm:WasmEnvironment"],
    ],
)
def test_an_id_two_entry_points_claim_is_trusted_to_neither(
    claims: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = [metadata.EntryPoint("wasm", value, ENTRY_POINT_GROUP) for value in claims]
    installed.append(metadata.EntryPoint("local", "environments.local:LocalEnvironment", ENTRY_POINT_GROUP))
    monkeypatch.setattr("environments.registry.metadata.entry_points", lambda group: installed)
    infos = {info.env_id: info for info in list_environments()}
    assert not infos["wasm"].support.supported and infos["wasm"].environment is None
    assert "registered by 2 entry points" in infos["wasm"].support.reason
    with pytest.raises(UnknownEnvironment, match="registered by 2 entry points"):
        environment_class("wasm")
    assert infos["local"].support.supported  # the others are unaffected
    assert environment_class("local").env_id == "local"


@pytest.mark.parametrize(
    ("env_id", "reason"),
    [
        ("uninstalled_env", "unknown environment 'uninstalled_env'"),
        ("local", "which is no deterministic wasm environment"),
        ("docker_cpu", "which is no deterministic wasm environment"),
    ],
)
def test_a_journalled_subtask_of_an_environment_that_cannot_re_run_it_is_unverifiable(
    env_id: str, reason: str, tmp_path: Path
) -> None:
    module = tmp_path / "app.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    entry = Entry(
        subtask_id="s",
        task_id="t",
        provider_id="p",
        app_id="a",
        app_name="demo",
        env_id=env_id,
        module_sha256=hashlib.sha256(module.read_bytes()).hexdigest(),
        module_path=str(module),
        inputs=(),
        inputs_dir=str(tmp_path),
        params_json="{}",
        seed="t/s",
        assigned_ms=0,
    )

    async def rerun() -> None:
        reexecutor = Reexecutor(tmp_path / "scratch")
        try:
            async with reexecutor.run(entry):
                pass
        finally:
            await reexecutor.close()

    with pytest.raises(Unverifiable, match=reason):
        asyncio.run(rerun())
    assert not any((tmp_path / "scratch").glob("*"))  # nothing staged, nothing left


@pytest.mark.parametrize(
    "module",
    ["/etc/passwd", "../outside.wasm", "build/../../outside.wasm", ""],
    ids=["absolute", "parent", "parent inside", "empty"],
)
def test_a_served_module_outside_the_descriptors_folder_is_refused(module: str, tmp_path: Path) -> None:
    wasm = environment_class("wasm")
    with pytest.raises(PrerequisitesRefused, match="prerequisites module: must be a path inside"):
        wasm.app_serving(AppPayload({"module": module, "sha256": MODULE_SHA256}, tmp_path))
    honest = wasm.app_serving(payload_of(AppManager().resolve("tutorialapp", "wasm")))
    assert isinstance(honest, CommandServing) and Path(honest.command[-1]).is_file()
