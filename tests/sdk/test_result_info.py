"""Facts an app reports about a result it accepted (apps/sdk/result_info.py) reach the node's client with
the Verify reply, over real gRPC: only after SUCCESS, only from handlers that opt in, cleaned of what may
not travel, and a failing report never costs the verdict."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from apps.sdk import RequestorTaskDir, VerifyResult
from apps.sdk.client import RequestorAppClient
from apps.sdk.result_info import MAX_CHARS, MAX_ENTRIES, ReportsResultInfo, decode, encode
from apps.sdk.server import CallGate, RequestorAppService

from .helpers import FailingRequestor, in_process


class Reporting(FailingRequestor, ReportsResultInfo):
    """FailingRequestor with its own verdict, reporting `info` (or raising `report_error`) on SUCCESS."""

    def __init__(self, info: dict[str, str], verdict: VerifyResult = VerifyResult.SUCCESS) -> None:
        super().__init__()
        self.info, self.verdict = info, verdict
        self.report_error: Exception | None = None

    async def verify(self, task_dir: RequestorTaskDir, subtask_id: str) -> tuple[VerifyResult, str]:
        return self.verdict, "checked"

    async def result_info(self, task_dir: RequestorTaskDir, subtask_id: str) -> dict[str, str]:
        if self.report_error is not None:
            raise self.report_error
        return self.info


async def verified(work_dir: Path, handler: FailingRequestor) -> tuple[VerifyResult, str, dict[str, str]]:
    """CreateTask, NextSubtask, a delivered result, then Verify with its reported facts."""
    gate = CallGate()
    async with in_process(RequestorAppService(work_dir, handler, gate), gate) as channel:
        client = RequestorAppClient(channel)
        await client.create_task("t1", 4, {})
        assert await client.next_subtask("t1", "s1") is not None
        outputs = work_dir / "t1" / "subtask_outputs" / "s1"
        outputs.mkdir(parents=True)
        (outputs / "result.txt").write_text("42")
        return await client.verify_with_info("t1", "s1")


def test_an_accepted_results_facts_arrive_with_the_verdict(tmp_path: Path) -> None:
    reply = asyncio.run(verified(tmp_path, Reporting({"device": "CPU"})))
    assert reply == (VerifyResult.SUCCESS, "checked", {"device": "CPU"})


@pytest.mark.parametrize(
    "verdict", [VerifyResult.FAILURE, VerifyResult.AWAITING_DATA, VerifyResult.INCONCLUSIVE]
)
def test_no_facts_for_a_result_not_accepted(tmp_path: Path, verdict: VerifyResult) -> None:
    reply = asyncio.run(verified(tmp_path, Reporting({"device": "CPU"}, verdict)))
    assert reply == (verdict, "checked", {})


def test_an_app_that_does_not_report_sends_nothing(tmp_path: Path) -> None:
    assert asyncio.run(verified(tmp_path, FailingRequestor())) == (VerifyResult.SUCCESS, "", {})


def test_a_failing_report_costs_the_facts_not_the_verdict(tmp_path: Path) -> None:
    handler = Reporting({"device": "CPU"})
    handler.report_error = RuntimeError("plan unreadable")
    assert asyncio.run(verified(tmp_path, handler)) == (VerifyResult.SUCCESS, "checked", {})


@pytest.mark.parametrize(
    ("info", "arrives"),
    [
        ({"Device": "CPU", "device": "CPU"}, {"device": "CPU"}),
        ({"de vice": "x", "1st": "x", "": "x", "x" * 33: "x"}, {}),
        ({"device": "CPU\n\x1b[31mred\x07"}, {"device": "CPU[31mred"}),
        ({"device": "é" * (MAX_CHARS + 50)}, {"device": "é" * MAX_CHARS}),
        ({f"k{i:02d}": "v" for i in range(MAX_ENTRIES + 4)}, {f"k{i:02d}": "v" for i in range(MAX_ENTRIES)}),
    ],
    ids=["key-case", "bad-keys", "control-chars", "long-value", "too-many"],
)
def test_what_may_not_travel_is_dropped_or_cut(tmp_path: Path, info: dict[str, str], arrives: object) -> None:
    assert asyncio.run(verified(tmp_path, Reporting(info)))[2] == arrives


@pytest.mark.parametrize(
    "value", [None, "", "not json", "[1, 2]", '{"device": 7}', '{"device": "CPU"' + " " * 20_000 + "}"]
)
def test_a_hostile_metadata_value_decodes_to_nothing(value: str | None) -> None:
    assert decode(value) == {}
    assert decode(encode({"device": "CPU"})) == {"device": "CPU"}
