"""The conformance suite on a task-api component: tutorialapp's component build passes, and a component
with a planted bug (Verify accepts anything) fails by name.

The app servers are `python -m environments.wasm COMPONENT`, exactly as the node serves a wasm build;
they share a compile cache kept between test runs, so the 20 MB component compiles once per machine.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from environments.wasm import WasmConfig, WasmEnvironment
from environments.wasm.app_adapter import WasmModule
from runtime.conformance.report import Report
from runtime.conformance.runner import run_suite
from runtime.conformance.session import SuiteConfig
from runtime.conformance.target import Target, command_target
from tests.security.component_build import COMPILE_LIMITS, build_component, compile_cache_dir

from .support import PLANTED, ROOT, TUTORIAL_SCHEMA

SEED = 20240611
COMPONENT = ROOT / "apps" / "tutorialapp" / "wasm" / "tutorialapp.wasm"


def component_target(name: str, path: Path) -> Target:
    module = WasmModule.load(path)
    environment = WasmEnvironment(WasmConfig(cache_dir=compile_cache_dir(), compile=COMPILE_LIMITS))
    asyncio.run(environment.prepare())
    try:
        asyncio.run(environment.compile(module.path, module.sha256))
    finally:
        asyncio.run(environment.clean_up())
    return command_target(
        name,
        [sys.executable, "-m", "environments.wasm", str(path)],
        environment="wasm",
        parameters=TUTORIAL_SCHEMA,
        wasm_module=path,
    )


@pytest.fixture(autouse=True)
def shared_compile_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKAPI_WASM_CACHE", str(compile_cache_dir()))


def failed(report: Report) -> set[str]:
    return {prop.name for prop in report.properties if prop.status == "failed"}


def test_the_component_build_passes_the_suite(tmp_path: Path) -> None:
    target = component_target("tutorialapp-component", COMPONENT)
    report = run_suite(target, SuiteConfig(examples=4, task_examples=1, seed=SEED), work_dir=tmp_path)
    statuses = {prop.name: prop.status for prop in report.properties}
    assert report.passed, report.model_dump_json(indent=1)
    assert statuses["wasm_compute_deterministic"] == "passed"


def test_a_planted_bug_in_a_component_fails_its_property(tmp_path: Path) -> None:
    path = build_component(PLANTED / "component_verify_anything.py", "app", app_sources=True)
    target = component_target("component-verify-anything", path)
    only = frozenset({"verify_rejects_mutated_result"})
    report = run_suite(target, SuiteConfig(examples=6, seed=SEED, only=only), work_dir=tmp_path)
    # accepting every result also lets a whole task end with a wrong answer
    assert "verify_rejects_mutated_result" in failed(report), report.model_dump_json(indent=1)
    assert not report.passed
