"""A further environment, installed as a plugin through the `taskapi.environments` entry point, runs
tutorialapp end to end with no change to the node: `taskapi run` in a subprocess, real gRPC, real wasmtime.

The plugin is a package in a temporary folder on PYTHONPATH beside a `NAME-0.dist-info/` (METADATA and
entry_points.txt), which `importlib.metadata` finds as it finds pip-installed ones. Its environment runs
wasm modules (a subclass of the wasm environment under its own id) and writes the sha256 of every module
it runs to a log, with the program that ran it, so the test sees that both the provider (in `taskapi`'s
process) and the requestor's app server (the wasm adapter, `environments/wasm/__main__.py`) ran in it. The
app's build for it is a copy of the shipped wasm tutorialapp descriptor naming the new environment, added
with `taskapi apps add`.

A second environment of the package is of a class the node has never seen (an `Environment` that wraps the
first, no wasm, docker or local one): it serves the wasm build's app servers through the first's and logs
each server it starts, so the test sees a provider compute on servers a new class of environment serves,
with no change to the node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apps.tutorialapp import pow

ROOT = Path(__file__).resolve().parents[2]
TASKAPI = str(Path(sys.executable).with_name("taskapi"))
SHIPPED_WASM_BUILD = ROOT / "wasm_apps" / "tutorialapp"
PLUGIN_ENV = "plugged_wasm"
WRAPPING_ENV = "wrapped_wasm"
RUN_LOG_VARIABLE = "PLUGGED_WASM_RUN_LOG"
HANG_GUARD_S = 300

PLUGIN_SOURCE = f'''
"""A wasm environment under another id that logs the sha256 of each module it runs, and the program."""

import os
import sys

from environments.base import Capabilities, Environment
from environments.wasm import WasmEnvironment


class PluggedWasmEnvironment(WasmEnvironment):
    env_id = "{PLUGIN_ENV}"
    declared_capabilities = Capabilities(deterministic=True, metered=True)

    def submit(self, run):
        with open(os.environ["{RUN_LOG_VARIABLE}"], "a") as log:
            log.write(f"{{run.sha256}} {{os.path.basename(sys.argv[0])}}\\n")
        return super().submit(run)


class WrappedWasmEnvironment(Environment):
    """No wasm environment's subclass: it wraps one, and serves app servers through it, logging each."""

    env_id = "{WRAPPING_ENV}"
    declared_capabilities = Capabilities(deterministic=False, metered=False, serves_apps=True)
    payload_kind = PluggedWasmEnvironment.payload_kind
    prerequisites_type = PluggedWasmEnvironment.prerequisites_type

    def __init__(self, config=None):
        super().__init__(config)
        self.wrapped = PluggedWasmEnvironment(config)

    @classmethod
    def support(cls):
        return PluggedWasmEnvironment.support()

    @classmethod
    def app_serving(cls, payload):
        return LoggedServing(PluggedWasmEnvironment.app_serving(payload))

    async def install_prerequisites(self, prerequisites):
        await self.wrapped.install_prerequisites(prerequisites)

    async def benchmark(self):
        return await self.wrapped.benchmark()

    def runtime(self, payload, config=None):
        return self.wrapped.runtime(payload, config)

    async def _prepare(self):
        await self.wrapped.prepare()

    async def _clean_up(self):
        await self.wrapped.clean_up()


class LoggedServing:
    def __init__(self, serving):
        self.serving = serving

    async def open(self):
        launch = await self.serving.open()

        def logged(role, work_dir, persistent):
            with open(os.environ["{RUN_LOG_VARIABLE}"], "a") as log:
                log.write(f"{WRAPPING_ENV} {{role}}\\n")
            return launch(role, work_dir, persistent)

        return logged

    async def close(self):
        await self.serving.close()

    def hand_over(self, folder):
        self.serving.hand_over(folder)
'''


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A folder holding the plugin package and its dist-info, as pip would install it."""
    folder = tmp_path / "site"
    (folder / "taskapi_plugged_wasm").mkdir(parents=True)
    (folder / "taskapi_plugged_wasm" / "__init__.py").write_text(PLUGIN_SOURCE)
    info = folder / "taskapi_plugged_wasm-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: taskapi-plugged-wasm\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        f"[taskapi.environments]\n{PLUGIN_ENV} = taskapi_plugged_wasm:PluggedWasmEnvironment\n"
        f"{WRAPPING_ENV} = taskapi_plugged_wasm:WrappedWasmEnvironment\n"
    )
    return folder


def taskapi(args: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TASKAPI, *args], env=environment, capture_output=True, text=True, timeout=HANG_GUARD_S, check=False
    )


def with_plugin(plugin_path: Path, run_log: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(plugin_path), RUN_LOG_VARIABLE: str(run_log)}


def plugin_build(tmp_path: Path, env: str = PLUGIN_ENV) -> Path:
    """The shipped wasm tutorialapp build, its descriptor naming a plugin environment."""
    folder = tmp_path / f"build-{env}"
    folder.mkdir()
    descriptor = json.loads((SHIPPED_WASM_BUILD / "descriptor.json").read_text())
    descriptor["environment"] = env
    (folder / "descriptor.json").write_text(json.dumps(descriptor))
    module = descriptor["prerequisites"]["module"]
    shutil.copyfile(SHIPPED_WASM_BUILD / module, folder / module)
    return folder


def test_the_plugin_environment_is_listed_with_its_capabilities(plugin_path: Path, tmp_path: Path) -> None:
    listed = taskapi(["envs", "list", "--json"], with_plugin(plugin_path, tmp_path / "runs.log"))
    assert listed.returncode == 0, listed.stderr
    rows = {row["env"]: row for row in json.loads(listed.stdout)}
    assert rows[PLUGIN_ENV]["supported"] is True
    assert rows[PLUGIN_ENV]["capabilities"] == ["deterministic", "metered"]


def test_tutorialapp_runs_end_to_end_in_a_plugin_environment(plugin_path: Path, tmp_path: Path) -> None:
    run_log = tmp_path / "runs.log"
    environment = with_plugin(plugin_path, run_log)
    added = taskapi(["apps", "add", str(plugin_build(tmp_path)), "--enable"], environment)
    assert added.returncode == 0, added.stdout + added.stderr

    output = tmp_path / "out"
    settings = ["--set", "input=plugged", "--set", "difficulty=10", "--set", "subtasks=4"]
    ran = taskapi(
        ["run", "tutorialapp", "--env", PLUGIN_ENV, *settings, "--output", str(output), "--json"], environment
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr

    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    assert summary["env"] == PLUGIN_ENV and summary["subtasks"]["accepted"] >= 1
    nonce = pow.search("plugged", 10, 0, 2**14)
    assert nonce is not None
    written = json.loads((output / "result.json").read_text())
    assert written == {"nonce": nonce, "hash": pow.digest("plugged", nonce).hex()}
    module_sha256 = json.loads((SHIPPED_WASM_BUILD / "descriptor.json").read_text())["prerequisites"][
        "sha256"
    ]
    runs = run_log.read_text().splitlines()
    assert runs.count(f"{module_sha256} taskapi") >= summary["subtasks"]["accepted"], runs  # providers
    assert f"{module_sha256} __main__.py" in runs, runs  # the requestor's app server


def test_a_provider_computes_in_a_new_class_of_environment_on_the_servers_it_serves(
    plugin_path: Path, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    environment = with_plugin(plugin_path, run_log)
    added = taskapi(["apps", "add", str(plugin_build(tmp_path, WRAPPING_ENV)), "--enable"], environment)
    assert added.returncode == 0, added.stdout + added.stderr

    output = tmp_path / "out"
    settings = ["--set", "input=wrapped", "--set", "difficulty=8", "--set", "subtasks=2"]
    ran = taskapi(
        ["run", "tutorialapp", "--env", WRAPPING_ENV, *settings, "--output", str(output), "--json"],
        environment,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr

    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    assert summary["env"] == WRAPPING_ENV and summary["subtasks"]["accepted"] >= 1
    nonce = pow.search("wrapped", 8, 0, 2**14)
    assert json.loads((output / "result.json").read_text())["nonce"] == nonce
    servers = run_log.read_text().splitlines()
    assert servers.count(f"{WRAPPING_ENV} provider") >= summary["subtasks"]["accepted"], servers
    assert f"{WRAPPING_ENV} requestor" in servers, servers


def test_without_the_plugin_its_environment_is_unknown(tmp_path: Path) -> None:
    ran = taskapi(
        ["run", "tutorialapp", "--env", PLUGIN_ENV, "--set", "input=x", "--output", str(tmp_path / "out")],
        {**os.environ},
    )
    assert ran.returncode == 2 and f"'{PLUGIN_ENV}' is not one of" in ran.stderr


@pytest.mark.parametrize(
    ("env_id", "refusal"),
    [
        ("nowhere", "unknown environment 'nowhere'"),
        ("local", "environment 'local' does not run wasm modules"),
    ],
)
def test_the_wasm_adapter_refuses_an_environment_that_runs_no_wasm(env_id: str, refusal: str) -> None:
    module = SHIPPED_WASM_BUILD / "tutorialapp.wasm"
    served = subprocess.run(
        [sys.executable, "-m", "environments.wasm", "--env", env_id, str(module), "requestor", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode == 2 and refusal in served.stderr, served.stderr
