"""Properties of a server's life: Shutdown (graceful and prompt) and RunBenchmark (positive, bounded).

The bounds are generous limits on waiting (a hang detector), not performance targets: a server gets
`shutdown_bound_s` to exit after Shutdown (the SDK itself drains running calls for up to 10 s), and
RunBenchmark `benchmark_bound_s` to answer.
"""

from __future__ import annotations

import math
import time
from typing import Any

from grpclib.const import Status
from hypothesis import strategies as st

from runtime.conformance.properties import Checks
from runtime.conformance.session import Session
from runtime.conformance.task_properties import ExampleBody
from runtime.conformance.wire import AppServer, Hang, ProviderWire, Reply, RequestorWire, mismatch

SHUTDOWN = "shutdown_graceful_and_prompt"
BENCHMARK = "benchmark_positive_and_bounded"


def _expect(checks: Checks, owner: str, what: str, reply: Reply[Any], status: Status) -> bool:
    problem = mismatch(what, reply, status)
    checks.check(owner, problem is None, problem)
    return problem is None


def _exits_promptly(checks: Checks, session: Session, server: AppServer, after: str) -> None:
    bound = session.config.shutdown_bound_s
    code = server.wait_exit(bound)
    checks.check(
        SHUTDOWN,
        code == 0,
        f"the {server.role} did not exit with code 0 within {bound:.0f} s of {after} (exit code {code}; "
        f"killed if it still ran); log: {server.log_tail()[-500:]}",
    )


def _refused_promptly(checks: Checks, session: Session, wire: RequestorWire, task_id: str) -> None:
    """A call after Shutdown gets UNAVAILABLE (from the draining server or a closed port), and soon."""
    try:
        reply = wire.has_pending_subtasks(task_id)
    except Hang:
        checks.check(
            SHUTDOWN,
            False,
            f"a call after Shutdown got no answer within {session.config.shutdown_bound_s:.0f} s (the server "
            "stopped serving but kept its connections open)",
        )
        return
    _expect(checks, SHUTDOWN, "a call after Shutdown", reply, Status.UNAVAILABLE)


def shutdown(session: Session, checks: Checks) -> ExampleBody:
    """A requestor with a task, then Shutdown, a refused call, a prompt exit, a restart that still
    knows the task; a persistent provider's Shutdown and exit."""

    def body(data: st.DataObject) -> None:
        requestor = session.server("requestor", "shutdown-requestor")
        provider = session.server("provider", "shutdown-provider", persistent=True)
        try:
            requestor.start()
            wire = RequestorWire(requestor)
            task_id = session.fresh_id("task")
            spec = data.draw(session.tasks, label="task")
            created = wire.create_task(task_id, spec.max_subtasks, spec.params_json).status is Status.OK
            if created and data.draw(st.booleans(), label="hand out a subtask"):
                wire.next_subtask(task_id, "s1")
            _expect(checks, SHUTDOWN, "requestor Shutdown", wire.shutdown(), Status.OK)
            _refused_promptly(
                checks, session, RequestorWire(requestor, timeout=session.config.shutdown_bound_s), task_id
            )
            _exits_promptly(checks, session, requestor, "Shutdown")
            if created:
                requestor.start()
                _expect(
                    checks,
                    SHUTDOWN,
                    "HasPendingSubtasks of a task after a restart",
                    RequestorWire(requestor).has_pending_subtasks(task_id),
                    Status.OK,
                )
                _expect(
                    checks,
                    SHUTDOWN,
                    "Shutdown after a restart",
                    RequestorWire(requestor).shutdown(),
                    Status.OK,
                )
                _exits_promptly(checks, session, requestor, "Shutdown")
            provider.start()
            _expect(
                checks, SHUTDOWN, "persistent provider Shutdown", ProviderWire(provider).shutdown(), Status.OK
            )
            _exits_promptly(checks, session, provider, "Shutdown")
        finally:
            requestor.close()
            provider.close()

    return body


def _score(checks: Checks, session: Session, what: str, call: Reply[Any] | None, began: float) -> None:
    elapsed = time.monotonic() - began
    bound = session.config.benchmark_bound_s
    if call is None or not _expect(checks, BENCHMARK, what, call, Status.OK):
        return
    score = getattr(call.value(), "score", float("nan"))
    checks.check(
        BENCHMARK,
        math.isfinite(score) and score > 0,
        f"{what}: score {score} is not a finite positive number",
    )
    checks.check(
        BENCHMARK, elapsed <= bound, f"{what} took {elapsed:.1f} s, more than the bound of {bound:.0f} s"
    )


def benchmark(session: Session, checks: Checks) -> ExampleBody:
    """RunBenchmark on the requestor under test, and on a single-call provider (which then exits)."""

    def body(data: st.DataObject) -> None:
        began = time.monotonic()
        _score(checks, session, "requestor RunBenchmark", session.requestor_wire().run_benchmark(), began)
        provider = session.server("provider", "benchmark-provider", persistent=False)
        try:
            provider.start()
            began = time.monotonic()
            _score(
                checks,
                session,
                "single-call provider RunBenchmark",
                ProviderWire(provider).run_benchmark(),
                began,
            )
            code = provider.wait_exit(session.config.shutdown_bound_s)
            checks.check(
                "provider_protocol",
                code == 0,
                f"a single-call provider did not exit with code 0 after RunBenchmark (exit code {code})",
            )
        finally:
            provider.close()

    return body
