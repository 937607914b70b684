"""Fault injection with real processes: `taskapi requestor serve` and `taskapi provider join` over real gRPC.

Each test disturbs a running task (kill -9, a lying or failing provider, a wrong token, garbage on the
port), then asserts what the node must guarantee: the task finishes with the same answer as an
undisturbed run (computed here with the app's own kernel), the subtask states in the store say what
happened to each piece of work, and the requestor's log says it in one clear line.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest
from grpclib.const import Status

from apps.tutorialapp.plan import PLAN_FILE, Plan, RangeState
from runtime.node.requestor_service import bearer

from .cluster import ENVS, HOST, Cluster, Requestor, expected_result, wait_until

log = logging.getLogger(__name__)

# Range 0 holds no valid nonce and is searched in full (2**21 hashes, seconds of Python); the answer
# 2463733 lies 366581 nonces into range 1, so range 1 finishes well before range 0.
SLOW = {"input": "node-fault-3", "difficulty": 22, "subtasks": 2}
# The same search in 4 ranges of 2**20: ranges 0 and 1 hold no valid nonce and are searched in full; the
# answer lies 366581 nonces into range 2, so range 2 finishes at about a third of their time. The open range 3
# is never handed out: it waits until every range below it is done, and by then the answer is known.
SLOW_IN_FOUR = {**SLOW, "subtasks": 4}
# Quick tasks: a few ranges of 2**15 nonces; the answer 144086 / 29098 needs one or several rounds.
CHEAT = {"input": "node-cheat", "difficulty": 16, "subtasks": 2}
FLAKY = {"input": "node-raise", "difficulty": 16, "subtasks": 2}
QUICK = {"input": "node-attack", "difficulty": 12, "subtasks": 2}


def expected(params: dict[str, object]) -> dict[str, object]:
    text, difficulty = params["input"], params["difficulty"]
    assert isinstance(text, str) and isinstance(difficulty, int)
    return expected_result(text, difficulty)


def plan_of(requestor: Requestor, task_id: str) -> Plan:
    """The app's own record of its ranges, in the task's dir under the requestor's data dir (a wasm app's
    in its state folder there; the C module keeps the Python app's format)."""
    (plan_file,) = requestor.data_dir.glob(f"*/*/{task_id}/**/{PLAN_FILE}")
    return Plan.load(plan_file.parent)


def test_a_killed_provider_loses_its_lease_and_another_provider_finishes(cluster: Cluster) -> None:
    answer = expected(SLOW)
    requestor = cluster.requestor(lease_ms=1500)
    doomed = cluster.provider("doomed", requestor, capacity=1)
    task_id = requestor.submit("tutorialapp", "local", SLOW)

    def doomed_is_computing() -> bool:
        return any(
            s.state == "assigned" and s.provider_id == doomed.provider_id
            for s in requestor.store.subtasks(task_id)
        )

    wait_until(doomed_is_computing, "the first provider taking a subtask")
    doomed.kill9()
    rescuer = cluster.provider("rescuer", requestor, capacity=1)
    status = requestor.wait_for_task(task_id)

    assert status.state == "finished", status.reason
    assert requestor.result(task_id) == answer
    subtasks = requestor.store.subtasks(task_id)
    (lost,) = [s for s in subtasks if s.provider_id == doomed.provider_id]
    assert lost.state == "expired", f"the killed provider's subtask ended {lost.state}, not expired"
    accepted = [s for s in subtasks if s.state == "accepted"]
    assert {s.provider_id for s in accepted} == {rescuer.provider_id}
    assert lost.params in [s.params for s in accepted], "the lost range was never computed again"
    assert requestor.status(task_id)["subtasks"] == {"expired": 1, "accepted": 2}
    requestor.wait_for_log(f"subtask {lost.subtask_id}: lease of provider {doomed.provider_id} expired")
    log.info("killed provider %s: its subtask expired and %s finished the task", doomed.name, rescuer.name)


@pytest.mark.parametrize("env", ENVS)
def test_a_killed_requestor_restarts_and_finishes_without_recomputing(cluster: Cluster, env: str) -> None:
    answer = expected(SLOW_IN_FOUR)
    requestor = cluster.requestor(lease_ms=1500)
    cluster.provider("worker", requestor, capacity=3, env=env)
    task_id = requestor.submit("tutorialapp", env, SLOW_IN_FOUR)
    wait_until(lambda: requestor.store.states(task_id) == {"assigned": 3}, "three ranges assigned")
    if env == "wasm":  # the module comes from the requestor: killed before, the provider could not compute
        modules = cluster.root / "worker" / "provider" / "modules"
        wait_until(lambda: any(modules.glob("*.wasm")), "the provider holding the module")
    before = {s.subtask_id: s.params for s in requestor.store.subtasks(task_id)}
    requestor.kill9()

    # The provider keeps computing while the requestor is down: range 2 (early answer) finishes during
    # the outage and waits for delivery; ranges 0 and 1 are still being computed when the requestor is back.
    (quick,) = [sid for sid, params in before.items() if params["start"] == 2 * 2**20]
    wait_until(lambda: any(cluster.root.glob(f"worker/**/{quick}/result.json")), "range 2 finishing")
    restarted = cluster.restart(requestor)
    status = restarted.wait_for_task(task_id)

    assert status.state == "finished", status.reason
    assert restarted.result(task_id) == answer
    after = restarted.store.subtasks(task_id)
    assert {s.subtask_id: s.state for s in after} == dict.fromkeys(before, "accepted"), (
        "work was lost or computed twice across the restart"
    )
    plan = plan_of(restarted, task_id)
    assert [r.state for r in plan.ranges] == [RangeState.DONE] * 3 + [RangeState.PENDING]
    for subtask_id in before:
        restarted.wait_for_log(f"subtask {subtask_id} accepted")
    restarted.wait_for_log(f"task {task_id} finished")
    log.info("requestor killed mid-task: restarted, the three computed ranges delivered, nothing recomputed")


@pytest.mark.parametrize("env", ENVS)
def test_a_cheating_provider_is_rejected_and_an_honest_one_finishes(cluster: Cluster, env: str) -> None:
    answer = expected(CHEAT)
    requestor = cluster.requestor()
    cheater = cluster.cheating_provider("cheater", requestor, "wrong", env=env)
    task_id = requestor.submit("tutorialapp", env, CHEAT)
    wait_until(lambda: "rejected" in requestor.store.states(task_id), "the first wrong result rejected")
    honest = cluster.provider("honest", requestor, capacity=1, env=env)
    status = requestor.wait_for_task(task_id)

    assert status.state == "finished", status.reason
    assert requestor.result(task_id) == answer
    subtasks = requestor.store.subtasks(task_id)
    rejected = [s for s in subtasks if s.state == "rejected"]
    assert {s.provider_id for s in rejected} == {cheater.provider_id}
    assert all("fewer than 16 leading zero bits" in s.reason for s in rejected), rejected
    accepted = [s for s in subtasks if s.state == "accepted"]
    assert {s.provider_id for s in accepted} == {honest.provider_id}
    assert [bill.provider_id for bill in status.bills] == [honest.provider_id], "the cheater was paid"
    assert {s.subtask_id for s in subtasks} == {s.subtask_id for s in rejected + accepted}
    requestor.wait_for_log(f"subtask {rejected[0].subtask_id} rejected by the app: nonce 0 has fewer")
    log.info("cheating provider: %d wrong result(s) rejected, honest provider finished", len(rejected))


@pytest.mark.parametrize("env", ENVS)
def test_a_failing_compute_is_reported_at_once_not_left_to_its_lease(cluster: Cluster, env: str) -> None:
    answer = expected(FLAKY)
    # The lease outlives the test: only the provider's report can end a subtask as `failed`.
    requestor = cluster.requestor(lease_ms=600_000)
    flaky = cluster.cheating_provider("flaky", requestor, "raise", times=1, env=env)
    task_id = requestor.submit("tutorialapp", env, FLAKY)
    status = requestor.wait_for_task(task_id)

    assert status.state == "finished", status.reason
    assert requestor.result(task_id) == answer
    subtasks = requestor.store.subtasks(task_id)
    (failed,) = [s for s in subtasks if s.state == "failed"]
    assert failed.reason == f"provider {flaky.provider_id}: RuntimeError: deliberate failure in compute #1"
    assert failed.params in [s.params for s in subtasks if s.state == "accepted"], "failed range not redone"
    assert {s.state for s in subtasks} == {"failed", "accepted"}
    requestor.wait_for_log(f"provider {flaky.provider_id} failed subtask {failed.subtask_id}: RuntimeError")
    log.info("failing compute: reported at once as failed, the range was computed again")


def test_a_provider_failing_everything_is_dropped_before_it_burns_the_task(cluster: Cluster) -> None:
    answer = expected(FLAKY)
    requestor = cluster.requestor(lease_ms=600_000)
    broken = cluster.cheating_provider("broken", requestor, "raise", times=0)
    task_id = requestor.submit("tutorialapp", "local", FLAKY)
    requestor.wait_for_log(f"provider {broken.provider_id} dropped from task {task_id}: 3 failures")
    honest = cluster.provider("honest", requestor, env="local")
    status = requestor.wait_for_task(task_id)

    assert status.state == "finished", status.reason
    assert requestor.result(task_id) == answer
    subtasks = requestor.store.subtasks(task_id)
    failed = [s for s in subtasks if s.state == "failed"]
    assert len(failed) == 3 and {s.provider_id for s in failed} == {broken.provider_id}, failed
    assert {s.provider_id for s in subtasks if s.state == "accepted"} == {honest.provider_id}
    log.info("broken provider: dropped after 3 failures, the honest one finished the task")


def test_a_provider_with_a_wrong_token_reaches_nothing(cluster: Cluster) -> None:
    requestor = cluster.requestor()
    task_id = requestor.submit("tutorialapp", "local", QUICK)
    intruder = cluster.provider("intruder", requestor, token="not-the-token")
    assert intruder.wait_exit() != 0
    assert f"requestor at {requestor.address} refused the token" in intruder.log_text()
    requestor.wait_for_log(r"re:refused /taskapi\.node\.Requestor/Join from .*127\.0\.0\.1.*: bad or missing")

    raw = requestor.raw_provider("intruder-raw", token="not-the-token")
    control_as_provider = requestor.raw_provider("x", token=requestor.control_token)
    refused: dict[str, Status] = {
        "Join": raw.join().status,
        "RequestWork": raw.request_work().status,
        "Heartbeat": raw.heartbeat(["x"]).status,
        "FetchResource": raw.fetch("0" * 64).status,
        "ReportFailure": raw.report_failure("x", "no").status,
        "Leave": raw.leave().status,
        "Join with the control token": control_as_provider.join().status,
    }
    control = requestor.control()
    control.metadata = bearer(requestor.token)
    refused["GetTask with the provider token"] = control.status(task_id).status
    control.metadata = {}
    refused["AbortTask without a token"] = control.abort(task_id).status
    raw.close()
    control_as_provider.close()
    control.close()
    assert refused == dict.fromkeys(refused, Status.UNAUTHENTICATED)
    assert requestor.store.providers() == [], "an unauthenticated provider was recorded"
    assert requestor.store.states(task_id) == {}, "an unauthenticated caller got work"

    honest = cluster.provider("honest", requestor)
    assert requestor.wait_for_task(task_id).state == "finished"
    assert requestor.result(task_id) == expected(QUICK)
    assert requestor.store.providers() == [honest.provider_id]
    log.info("wrong token: every call UNAUTHENTICATED, nothing recorded; the task finished untouched")


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # empty SETTINGS
HEADERS_FRAME = b"\x00\x00\x08\x01\x05\x00\x00\x00\x01"  # 8 bytes of END_STREAM|END_HEADERS on stream 1
GARBAGE = {
    "random bytes": os.urandom(64 * 1024),
    "HTTP/1.1": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "preface, then noise": PREFACE + os.urandom(4096),
    "preface, then a 16 MiB frame header": PREFACE + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01",
    "preface, then bad HPACK": PREFACE + SETTINGS_FRAME + HEADERS_FRAME + b"\xff" * 8,
    "nothing at all": b"",
}


def _throw(payload: bytes, port: int) -> None:
    with socket.create_connection((HOST, port)) as sock:
        sock.settimeout(60)  # a hang guard: the requestor closes at once
        if payload:
            sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass


def test_garbage_on_the_port_leaves_the_requestor_serving(cluster: Cluster, tmp_path: Path) -> None:
    requestor = cluster.requestor()
    idle = socket.create_connection((HOST, requestor.port))  # held open, silent, throughout
    try:
        for payload in GARBAGE.values():
            _throw(payload, requestor.port)
        assert requestor.running
        task_id = requestor.submit("tutorialapp", "local", QUICK)
        cluster.provider("honest", requestor)
        assert requestor.wait_for_task(task_id).state == "finished"
        assert requestor.result(task_id) == expected(QUICK)
    finally:
        idle.close()
    assert "Traceback" not in requestor.log_text()
    log.info("garbage: %d bad connections and one idle one; the requestor still served a task", len(GARBAGE))
