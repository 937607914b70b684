"""tutorialapp built as a task-api component (apps/tutorialapp/wasm) in the wasm environment.

The component is the committed build of the same handler functions the Python app runs; these tests run
it through the real adapter and worker processes, and through `taskapi run` on the embedded node.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from apps.sdk import AppError, InvalidArgument, ProviderTaskDir, RequestorTaskDir, VerifyResult
from apps.tutorialapp import pow
from environments.wasm import ModuleRejected, WasmConfig, WasmEnvironment, WasmError
from environments.wasm.app_adapter import (
    ERRORS,
    WASM_STATE_DIR,
    WasmApp,
    WasmModule,
    WasmProviderApp,
    WasmRequestorApp,
)
from environments.wasm.component import ComponentRun
from environments.wasm.component_adapter import contract_reply, interface_name
from environments.wasm.runs import CompileLimits
from runtime.appmanager.loading import file_sha256 as sha256_file
from runtime.cli import main
from runtime.node.journal import Entry, Journal, connect
from runtime.node.replay import find_journal
from wasm_apps import module_path

ROOT = Path(__file__).resolve().parents[3]
COMPONENT_DIR = ROOT / "apps" / "tutorialapp" / "wasm"
COMPONENT = COMPONENT_DIR / "tutorialapp.wasm"


COMPILE_CACHE = (
    Path(os.environ.get("TASKAPI_TEST_COMPONENTS", Path.home() / ".cache" / "taskapi" / "test-components"))
    / "compiled"
)
"""A compile cache kept between test runs (tests/security/component_build.py's): the component, 20 MB of
CPython, compiles once per machine (10 s on two idle cores, 40 s and more under load)."""
COMPILE_LIMITS = CompileLimits(time_s=300)
"""More compile time than the default 60 s, which a loaded machine can exceed for this component."""


@pytest.fixture(scope="module")
def env() -> Iterator[WasmEnvironment]:
    environment = WasmEnvironment(WasmConfig(cache_dir=COMPILE_CACHE, max_parallel=1, compile=COMPILE_LIMITS))
    asyncio.run(environment.prepare())
    yield environment
    asyncio.run(environment.clean_up())


@pytest.fixture(scope="module")
def app(env: WasmEnvironment) -> WasmApp:
    return WasmApp(WasmModule.load(COMPONENT), env)


def task_dir(root: Path) -> RequestorTaskDir:
    directory = RequestorTaskDir(root)
    directory.prepare()
    (root / WASM_STATE_DIR).mkdir()
    return directory


def test_the_descriptor_pins_the_committed_component() -> None:
    descriptor = json.loads((COMPONENT_DIR / "descriptor.json").read_text())
    module = WasmModule.load(COMPONENT, descriptor["prerequisites"]["sha256"])
    assert module.component and descriptor["environment"] == "wasm"


def test_compiles_once_then_loads_from_the_cache(env: WasmEnvironment, app: WasmApp) -> None:
    asyncio.run(env.compile(app.module.path, app.module.sha256))  # compiled now, or by an earlier run
    again = asyncio.run(env.compile(app.module.path, app.module.sha256))
    assert again.cached


def test_a_subtask_round_trip_gives_what_the_python_handlers_give(app: WasmApp, tmp_path: Path) -> None:
    requestor, provider = WasmRequestorApp(app), WasmProviderApp(app)
    task = task_dir(tmp_path / "requestor" / "t1")
    created = asyncio.run(requestor.create_task(task, 2, {"input": "hello", "difficulty": 6, "subtasks": 2}))
    assert created.env_id == "wasm" and created.prerequisites["sha256"] == app.module.sha256
    subtask = asyncio.run(requestor.next_subtask(task, "s1", "node"))
    assert subtask is not None and subtask.params == {
        "input": "hello",
        "difficulty": 6,
        "start": 0,
        "end": 32,
    }
    work = ProviderTaskDir(tmp_path / "provider" / "t1")
    work.prepare()
    work.subtask_dir("s1").mkdir()
    output, usage = asyncio.run(provider.compute_with_usage(work, "s1", subtask.params))
    claim = json.loads((work.root / output).read_text())
    nonce = pow.search("hello", 6, 0, 32)
    assert output == Path("s1", "result.json") and claim["nonce"] == nonce and (usage.fuel or 0) > 0
    task.subtask_outputs("s1").mkdir()
    (task.subtask_outputs("s1") / "result.json").write_text(json.dumps(claim))
    assert asyncio.run(requestor.verify(task, "s1")) == (VerifyResult.SUCCESS, "")


def test_a_refusal_keeps_its_status_and_message(app: WasmApp, tmp_path: Path) -> None:
    requestor = WasmRequestorApp(app)
    with pytest.raises(InvalidArgument, match="'difficulty' must be an integer"):
        asyncio.run(
            requestor.create_task(
                task_dir(tmp_path / "t"), 2, {"input": "x", "difficulty": "hard", "subtasks": 1}
            )
        )


def test_compute_repeats_exactly_output_and_fuel(app: WasmApp, tmp_path: Path) -> None:
    provider = WasmProviderApp(app)
    params = {"input": "abc", "difficulty": 4, "start": 0, "end": 200}
    runs = []
    for attempt in ("a", "b"):
        work = ProviderTaskDir(tmp_path / attempt / "t1")
        work.prepare()
        work.subtask_dir("s1").mkdir()
        output, usage = asyncio.run(provider.compute_with_usage(work, "s1", params))
        runs.append(((work.root / output).read_bytes(), usage.fuel))
    assert runs[0] == runs[1]


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_taskapi_run_picks_the_component_build_and_finds_the_smallest_nonce(
    env: WasmEnvironment, app: WasmApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the node's app servers share this test module's compile cache, where the component is compiled
    # already (a first compile takes ~10 s, several at once on a loaded machine far longer)
    asyncio.run(env.compile(app.module.path, app.module.sha256))
    monkeypatch.setenv("TASKAPI_WASM_CACHE", str(env.config.cache_dir))
    added = json.loads(run_cli("apps", "add", str(COMPONENT_DIR), "--enable", "--json"))
    listed = json.loads(run_cli("apps", "list", "--json"))["apps"]
    (c_build,) = [
        build["id"]
        for build in listed
        if build["name"] == "tutorialapp" and build["environment"] == "wasm" and build["id"] != added["id"]
    ]
    expected = pow.search("hello", 8, 0, 1 << 12)
    assert expected is not None
    results = {}
    for build, other in ((added["id"], c_build), (c_build, added["id"])):
        run_cli("apps", "disable", other)
        run_cli("apps", "enable", build)
        out, data = tmp_path / build[:12], tmp_path / f"data-{build[:12]}"
        settings = ["--set", "input=hello", "--set", "difficulty=8", "--set", "subtasks=2"]
        summary = run_cli(
            "run",
            "tutorialapp",
            "--env",
            "wasm",
            *settings,
            "--output",
            str(out),
            "--data-dir",
            str(data),
            "--json",
        )
        assert json.loads(summary.strip().splitlines()[-1])["env"] == "wasm"
        results[build] = json.loads((out / "result.json").read_text())
        entries = journal_entries(data)
        assert {entry.module_sha256 for entry in entries} == {
            app.module.sha256 if build == added["id"] else sha256_file(module_path("tutorialapp"))
        }
        if build == added["id"]:
            entry = next(entry for entry in entries if entry.output_sha256 is not None)
            report = json.loads(run_cli("replay", entry.subtask_id, "--data-dir", str(data), "--json"))
            assert report["bit_exact"] and report["replayed_fuel"] == entry.fuel, report
            assert report["replayed_fuel"] > 0
    assert list(results.values()) == [{"nonce": expected, "hash": pow.digest("hello", expected).hex()}] * 2


def journal_entries(data_dir: Path) -> list[Entry]:
    db = connect(find_journal(data_dir), read_only=True)
    try:
        return Journal(db, create=False).entries()
    finally:
        db.close()


GOOD_COMPUTE = {"task-id": "t1", "subtask-id": "s1", "subtask-params-json": "{}"}


@pytest.mark.parametrize(
    ("interface", "function", "args", "error", "message"),
    [
        (
            "provider",
            "compute",
            ({"task-id": "t1", "subtask-params-json": "{}"},),
            WasmError,
            "lacks the record field(s) subtask-id",
        ),
        (
            "provider",
            "compute",
            ({**GOOD_COMPUTE, "task-id": 7},),
            WasmError,
            "request.task-id must be a str, got 7",
        ),
        ("provider", "compute", (["t1"],), WasmError, "must be an object (a record)"),
        ("provider", "compute", (), WasmError, "compute takes 1 argument(s), the run gave 0"),
        ("provider", "nope", (), ModuleRejected, "exports no function nope"),
        ("nobody", "compute", (), ModuleRejected, "exports no interface taskapi:app/nobody@0.1.0"),
    ],
    ids=["missing-field", "wrong-type", "not-a-record", "argument-count", "no-function", "no-interface"],
)
def test_a_bad_call_is_refused_naming_what_is_wrong(
    env: WasmEnvironment,
    app: WasmApp,
    interface: str,
    function: str,
    args: tuple[object, ...],
    error: type[Exception],
    message: str,
) -> None:
    run = ComponentRun(
        module=app.module.path,
        sha256=app.module.sha256,
        interface=interface_name(interface),
        function=function,
        args=args,
    )
    with pytest.raises(error, match=re.escape(message)):
        asyncio.run(env.run(run))


@pytest.mark.parametrize(
    "case",
    ["invalid-argument", "not-found", "already-exists", "failed-precondition", "unavailable", "internal"],
)
def test_every_wit_error_case_reaches_the_caller_with_its_status(case: str) -> None:
    reply = json.loads(contract_reply("verify", json.dumps({"err": {"tag": case, "value": "why"}}).encode()))
    code = reply["error"]["code"]
    assert code == case.upper().replace("-", "_") and ERRORS[code].status.name == code
    assert reply["error"]["message"] == "why"


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (b"not json", "is not valid JSON"),
        (b'{"ok": 1, "err": 2}', "is not a WIT result"),
        (b"[1]", "is not a WIT result"),
    ],
)
def test_a_reply_that_is_not_a_result_is_an_app_error(returned: bytes, message: str) -> None:
    with pytest.raises(AppError, match=message):
        contract_reply("verify", returned)
