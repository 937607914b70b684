"""The node's refusals (runtime/node/errors.py) and the gRPC status each is answered with at the edge."""

from __future__ import annotations

import pytest
from grpclib.const import Status

from runtime.node.errors import (
    AppRefused,
    AppUnavailable,
    BadRequest,
    Duplicate,
    NodeError,
    NotFound,
    TooLarge,
    WrongState,
    is_refusal,
)
from runtime.node.provider import Refused
from runtime.node.requestor_service import status_of
from runtime.node.task_inputs import InputRefused, InputTooLarge

STATUSES = {
    "unknown task": (NotFound("unknown task 't'"), Status.NOT_FOUND),
    "bad parameters": (BadRequest("app a: 'difficulty' must be an integer"), Status.INVALID_ARGUMENT),
    "over a limit": (TooLarge("result of 9 bytes exceeds the 8-byte limit"), Status.RESOURCE_EXHAUSTED),
    "refused input": (InputRefused("input name '..' is not a plain name"), Status.INVALID_ARGUMENT),
    "input too large": (InputTooLarge("input of 9 bytes exceeds 8"), Status.RESOURCE_EXHAUSTED),
    "not joined": (WrongState("provider 'p' has not joined"), Status.FAILED_PRECONDITION),
    "second upload": (Duplicate("a result for subtask 's' is already arriving"), Status.ALREADY_EXISTS),
    "app not servable": (AppUnavailable("docker_cpu cannot serve a: no engine"), Status.UNAVAILABLE),
    "the app's own status": (AppRefused("app a refused the task: no", "OUT_OF_RANGE"), Status.OUT_OF_RANGE),
}


@pytest.mark.parametrize(("error", "status"), STATUSES.values(), ids=list(STATUSES))
def test_each_refusal_has_its_status_and_keeps_its_message(error: NodeError, status: Status) -> None:
    assert status_of(error) is status
    assert error.message == str(error) and error.message


@pytest.mark.parametrize(
    ("reason", "refusal"),
    [("refused: docker image x is not whitelisted", True), ("RuntimeError: out of disk", False), ("", False)],
)
def test_a_refusal_is_told_apart_from_a_failure(reason: str, refusal: bool) -> None:
    assert is_refusal(reason) is refusal


def test_a_providers_refusal_reaches_the_requestor_as_a_refusal() -> None:
    refused = Refused("docker image x of app a is not whitelisted")
    assert refused.report_reason == "refused: docker image x of app a is not whitelisted"
    assert is_refusal(refused.report_reason)
    assert not is_refusal(f"{type(refused).__name__}: {refused}")
