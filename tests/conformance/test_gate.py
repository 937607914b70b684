"""`provider join --require-conformance`: a passing report admits exactly the build it tested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from protos import node_pb2 as npb
from runtime.cli import main
from runtime.conformance.gate import ConformanceGate, ConformanceWhitelist, load_reports, require_conformance
from runtime.conformance.properties import PROPERTIES
from runtime.conformance.report import AppInfo, PropertyResult, Report
from runtime.node.provider import Refused, Whitelist

WASM_SHA = "ab" * 32
APP_ID = "cd" * 32


def report(
    *, app_id: str = APP_ID, digest: str = f"sha256:{WASM_SHA}", environment: str = "wasm", failing: str = ""
) -> Report:
    results = [
        PropertyResult(
            name=prop.name,
            statement=prop.statement,
            status="failed" if prop.name == failing else "passed",
            checks=1,
        )
        for prop in PROPERTIES
    ]
    return Report(
        app=AppInfo(
            name="app", version="1", environment=environment, app_id=app_id, digest=digest, digest_of=""
        ),
        seed=1,
        examples=200,
        started_at="2024-01-01T00:00:00+00:00",
        seconds=1.0,
        passed=not failing,
        properties=results,
        groups=[],
        reproduce="taskapi conformance app --seed 1",
    )


def assignment(
    env_id: str = "wasm", app_id: str = APP_ID, sha: str = WASM_SHA, prerequisites_json: str = ""
) -> npb.Assignment:
    message = npb.Assignment(
        app_id=app_id, env_id=env_id, app_name="app", prerequisites_json=prerequisites_json
    )
    if env_id == "wasm":
        message.app_module.sha256 = sha
    return message


def write(tmp_path: Path, name: str, value: Report) -> Path:
    path = tmp_path / name
    value.write(path)
    return path


def test_a_passing_report_admits_its_app_id_and_digest_only() -> None:
    gate = ConformanceGate([report()])
    assert gate.refusal(assignment()) is None
    other_build = gate.refusal(assignment(sha="ef" * 32))
    assert other_build is not None and "would run sha256:efef" in other_build
    unknown = gate.refusal(assignment(app_id="00" * 32))
    assert unknown is not None and "no passing conformance report" in unknown


def test_local_and_docker_builds_are_matched_by_their_digest() -> None:
    gate = ConformanceGate(
        [report(environment="local", digest="sha256:local"), report(app_id="ee" * 32, digest="sha256:image")],
        local_digest=lambda name: "sha256:local" if name == "app" else None,
        docker_digest=lambda message: "sha256:image",
    )
    assert gate.refusal(assignment("local")) is None
    pinned = json.dumps({"image": "taskapi/app", "tag": "1"})
    assert gate.refusal(assignment("docker_cpu", app_id="ee" * 32, prerequisites_json=pinned)) is None
    changed = ConformanceGate(
        [report(environment="local", digest="sha256:local")], local_digest=lambda n: "sha256:new"
    )
    assert "would run sha256:new" in (changed.refusal(assignment("local")) or "")


def test_the_whitelist_still_applies_and_the_gate_narrows_it() -> None:
    base = Whitelist(wasm_modules={WASM_SHA, "ef" * 32})
    gated = ConformanceWhitelist(wasm_modules=base.wasm_modules, gate=ConformanceGate([report()]))
    gated.check(assignment())
    with pytest.raises(Refused, match="conformance"):
        gated.check(assignment(sha="ef" * 32))
    with pytest.raises(Refused, match="not whitelisted"):
        gated.check(assignment(sha="12" * 32))


def test_failed_partial_and_foreign_reports_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"did not pass \(verify_rejects_mutated_result\)"):
        load_reports([write(tmp_path, "failed.json", report(failing="verify_rejects_mutated_result"))])
    partial = report().model_copy(update={"properties": report().properties[:3]})
    with pytest.raises(ValueError, match="partial report"):
        load_reports([write(tmp_path, "partial.json", partial)])
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(ValueError, match="not a conformance report"):
        load_reports([tmp_path / "junk.json"])
    whitelist = require_conformance(
        Whitelist(wasm_modules={WASM_SHA}), [write(tmp_path, "ok.json", report())]
    )
    assert whitelist.wasm_modules == {WASM_SHA} and whitelist.gate.reports[0].app.app_id == APP_ID


def test_provider_join_refuses_to_start_with_a_failed_report(tmp_path: Path) -> None:
    path = write(tmp_path, "failed.json", report(failing="abort_task_stops_work"))
    result = CliRunner().invoke(
        main, ["provider", "join", "127.0.0.1:9", "--token", "t", "--require-conformance", str(path)]
    )
    assert result.exit_code == 2, result.output
    assert "--require-conformance" in result.output and "abort_task_stops_work" in result.output
