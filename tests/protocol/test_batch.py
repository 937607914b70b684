"""RequestorAppBatch against the single calls, over real gRPC, for the Python tutorialapp and the C module.

A Hypothesis property runs one sequence of steps twice, on two fresh tasks of the same parameters in two
servers of the app: as batches (NextSubtasks, VerifyBatch) on one, as the equivalent single calls
(NextSubtask per id then HasPendingSubtasks, Verify per id) on the other. After every step both gave the
same replies, and both task dirs hold the same app state (every file but the SDK's protocol record, byte
for byte) and the same protocol record.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from hypothesis import given
from hypothesis import strategies as st

from apps.sdk import Subtask, VerifyResult
from apps.sdk.client import RequestorAppClient
from apps.sdk.protocol_state import STATE_NAME
from apps.tutorialapp import pow
from apps.tutorialapp.provider import search_range
from apps.tutorialapp.requestor import RESULT_FILE
from runtime.conformance.session import Session
from runtime.conformance.wire import AppServer, Loop

from .apps_under_test import ALL_APPS, POW_PARAMS, AppUnderTest
from .harness import machine_settings, protocol_session

Step = tuple[str, int, bool]
"""("next", how many asks, unused) or ("verify", how many assigned ids, whether their results are honest)."""

STEPS = st.lists(
    st.tuples(st.sampled_from(["next", "verify"]), st.integers(1, 5), st.booleans()), min_size=1, max_size=8
)


EXAMPLES = {"tutorialapp": 25, "wasm-tutorialapp": 12}
"""Examples per app (the C module's calls take longer: each is a fresh instance)."""


@pytest.fixture(params=ALL_APPS, ids=lambda app: app.name)
def batch_session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[AppUnderTest, Session]]:
    """The app, and its servers: `requestor` is asked in batches, `mirror` the single calls."""
    app: AppUnderTest = request.param
    loop = Loop()
    session = protocol_session(app, loop, tmp_path)
    try:
        yield app, session
    finally:
        session.close()
        loop.close()


def app_state(server: AppServer, task_id: str) -> dict[str, bytes]:
    """Every file of the task dir but the SDK's protocol record, by relative path."""
    root = server.work_dir / task_id
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(STATE_NAME)
    }


def protocol_record(server: AppServer, task_id: str) -> Any:
    """The SDK's protocol record of the task, as a reader replaying its journal sees it."""
    root = server.work_dir / task_id
    record = json.loads((root / f"{STATE_NAME}.json").read_text())
    record.pop("generation", None)
    journal = root / f"{STATE_NAME}.journal"
    for line in journal.read_text().splitlines()[1:] if journal.exists() else []:
        match json.loads(line):
            case ["task", state]:
                record["state"] = state
            case ["subtask", subtask_id, state]:
                record["subtasks"][subtask_id] = state
            case ["forget", subtask_id]:
                record["subtasks"].pop(subtask_id, None)
    return record


def deliver(server: AppServer, task_id: str, subtask_id: str, subtask: Subtask, honest: bool) -> None:
    """The subtask's result: the honest search of its range, or a claim of no nonce where there is one
    (or a nonce where there is none)."""
    result = search_range(subtask.params)
    if not honest:
        result = (
            {**result, "nonce": None, "hash": None} if result["nonce"] is not None else {**result, "nonce": 0}
        )
    outputs = server.work_dir / task_id / "subtask_outputs" / subtask_id
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / RESULT_FILE).write_text(json.dumps(result))


def test_batches_give_the_single_calls_replies_and_state(batch_session: tuple[AppUnderTest, Session]) -> None:
    app, session = batch_session
    batched_server, single_server = session.requestor, session.mirror
    for server in (batched_server, single_server):
        server.start()
    batched = RequestorAppClient(batched_server.channel)
    single = RequestorAppClient(single_server.channel)

    @machine_settings(max_examples=EXAMPLES[app.name])
    @given(params=POW_PARAMS, max_subtasks=st.integers(1, 6), steps=STEPS)
    def run(params: dict[str, Any], max_subtasks: int, steps: list[Step]) -> None:
        task_id = session.fresh_id("task")
        run_steps(session.loop, task_id, params, max_subtasks, steps)

    def run_steps(
        loop: Loop, task_id: str, params: dict[str, Any], max_subtasks: int, steps: list[Step]
    ) -> None:
        for client in (batched, single):
            loop.run(client.create_task(task_id, max_subtasks, params))
        assigned: dict[str, Subtask] = {}
        numbers = iter(range(10_000))
        for kind, count, honest in steps:
            if kind == "next":
                asks = [(f"sub-{next(numbers)}", "node-a") for _ in range(count)]
                got, pending = loop.run(batched.next_subtasks_with_pending(task_id, asks))
                want = [loop.run(single.next_subtask(task_id, subtask_id, node)) for subtask_id, node in asks]
                want_pending = loop.run(single.has_pending_subtasks(task_id))
                assert (got, pending) == (want, want_pending), f"NextSubtasks of {asks}"
                assigned.update((subtask_id, s) for (subtask_id, _), s in zip(asks, got, strict=True) if s)
            else:
                ids = list(assigned)[:count]
                if not ids:
                    continue
                for subtask_id in ids:
                    subtask = assigned.pop(subtask_id)
                    for server in (batched_server, single_server):
                        deliver(server, task_id, subtask_id, subtask, honest)
                verdicts = loop.run(batched.verify_batch(task_id, ids))
                want_verdicts = [loop.run(single.verify_with_info(task_id, subtask_id)) for subtask_id in ids]
                assert verdicts == want_verdicts, f"VerifyBatch of {ids}"
            assert app_state(batched_server, task_id) == app_state(single_server, task_id), (kind, count)
            assert protocol_record(batched_server, task_id) == protocol_record(single_server, task_id)

    assert batched.batches, "the app's server must serve RequestorAppBatch"
    run()
    assert batched.batches


DYING_APP = """
import os
import signal
import sys

from apps.sdk.server import main
from apps.tutorialapp.provider import TutorialProvider
from apps.tutorialapp.requestor import TutorialRequestor


class DyingRequestor(TutorialRequestor):
    async def next_subtask(self, task_dir, subtask_id, opaque_node_id):
        if subtask_id == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        return await super().next_subtask(task_dir, subtask_id, opaque_node_id)


sys.exit(main(sys.argv[1:], requestor=DyingRequestor, provider=TutorialProvider))
"""


def test_a_server_killed_mid_batch_resumes(tmp_path: Path) -> None:
    """SIGKILL inside NextSubtasks, after two of its ids were handed out: the restarted server holds every
    id of the batch as assigned (written ahead), the node gives them back with AbortSubtask, and the task
    then completes in batches with the right answer."""
    script = tmp_path / "dying_app.py"
    script.write_text(textwrap.dedent(DYING_APP))
    loop = Loop()
    server = AppServer(loop, [sys.executable, str(script)], "requestor", tmp_path / "work")
    text, difficulty = "resume", 6
    params: dict[str, Any] = {"input": text, "difficulty": difficulty, "subtasks": 4}
    try:
        server.start()
        client = RequestorAppClient(server.channel)
        loop.run(client.create_task("t1", 8, params))
        batch = ["s0", "s1", "die", "s3"]
        with pytest.raises(GRPCError) as killed:
            loop.run(client.next_subtasks("t1", [(subtask_id, "node") for subtask_id in batch]))
        assert killed.value.status is Status.UNAVAILABLE
        assert server.wait_exit() == -9

        server.start()
        client = RequestorAppClient(server.channel)
        assert protocol_record(server, "t1")["subtasks"] == dict.fromkeys(batch, "assigned")
        for subtask_id in batch:
            loop.run(client.abort_subtask("t1", subtask_id))
        numbers = iter(range(1000))
        for _ in range(20):
            asks = [(f"r{next(numbers)}", "node") for _ in range(3)]
            subtasks = loop.run(client.next_subtasks("t1", asks))
            handed = [(ask[0], s) for ask, s in zip(asks, subtasks, strict=True) if s is not None]
            if not handed:
                break
            for subtask_id, subtask in handed:
                deliver(server, "t1", subtask_id, subtask, honest=True)
            verdicts = loop.run(client.verify_batch("t1", [subtask_id for subtask_id, _ in handed]))
            assert all(verdict is VerifyResult.SUCCESS for verdict, _, _ in verdicts), verdicts
        assert not loop.run(client.has_pending_subtasks("t1"))
        answer = json.loads((server.work_dir / "t1" / "task_outputs" / RESULT_FILE).read_text())
        assert answer["nonce"] == pow.search(text, difficulty, 0, 2**40)
    finally:
        server.close()
        loop.close()
