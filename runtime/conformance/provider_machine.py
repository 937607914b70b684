"""Random call sequences against the ProviderApp, in single-call (Golem's) and persistent mode.

Valid subtask parameters come from the app's own RequestorApp (NextSubtask of a new task). Every Compute
is checked against `ProviderModel` (`provider_protocol`), its output must pass the requestor's Verify
(`verify_accepts_honest_result`), and a snapshot of the provider's task dir before and after shows that
it wrote nothing outside `<subtask_id>/` (`compute_writes_only_subtask_dir`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grpclib.const import Status
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from runtime.conformance.model import ProviderModel, Verdict
from runtime.conformance.properties import Checks
from runtime.conformance.session import Session, compute_changes, skip_logs
from runtime.conformance.snapshot import snapshot
from runtime.conformance.strategies import BAD_IDS, BAD_JSON, one_in, weighted
from runtime.conformance.wire import (
    AppServer,
    ProtocolMismatch,
    ProviderWire,
    Reply,
    copy_resources,
    deliver,
    mismatch,
    output_file,
)

PROTOCOL = "provider_protocol"


@dataclass
class IssuedSubtask:
    """A subtask the requestor handed out, to be computed by the provider under test."""

    task_id: str
    subtask_id: str
    params_json: str
    resources: list[str]
    verified: bool = False


class ProviderServers:
    """The provider servers of a run: one persistent server, and single-call ones (a spare boots ahead)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.persistent = session.server("provider", "persistent-provider")
        self._spare: AppServer | None = None
        self._in_use: AppServer | None = None

    def persistent_server(self) -> AppServer:
        if not self.persistent.running:
            self.persistent.start()
        return self.persistent

    def single_call_server(self) -> AppServer:
        """A fresh single-call server (already booting); the one handed out before is done with."""
        if self._in_use is not None:
            self._in_use.close()
        if self._spare is None:
            self._boot_spare()
        assert self._spare is not None
        self._in_use = self._spare
        self._boot_spare()
        return self._in_use

    def _boot_spare(self) -> None:
        self._spare = self.session.server("provider", "single-call-provider", persistent=False)
        self._spare.start_in_background()

    def close(self) -> None:
        for server in (self.persistent, self._spare, self._in_use):
            if server is not None:
                server.close()


class ProviderMachine(RuleBasedStateMachine):
    """Drives one provider server per example and checks each reply against the model."""

    def __init__(self, session: Session, servers: ProviderServers, checks: Checks) -> None:
        super().__init__()
        self.session = session
        self.servers = servers
        self.checks = checks
        self.model = ProviderModel(single_call=False)
        self.server = servers.persistent
        self.wire = ProviderWire(self.server)
        self.subtasks: list[IssuedSubtask] = []
        self.may_shut_down = False
        self.restarts_left = 0

    def expect(self, what: str, reply: Reply[Any], status: Status) -> bool:
        self.checks.exercised[PROTOCOL] += 1
        problem = mismatch(what, reply, status)
        if problem is not None:
            self.checks.fail_and_drop(PROTOCOL, problem)
        return status is Status.OK

    @initialize(single_call=one_in(10), may_restart=one_in(8), data=st.data())
    def start(self, single_call: bool, may_restart: bool, data: st.DataObject) -> None:
        """A single-call server (Golem's: one per call) or the persistent one, which may restart once."""
        self.model = ProviderModel(single_call=single_call)
        self.server = self.servers.single_call_server() if single_call else self.servers.persistent_server()
        self.wire = ProviderWire(self.server)
        self.may_shut_down = single_call or may_restart
        self.restarts_left = 1 if may_restart and not single_call else 0
        for _ in range(3):  # the app may refuse drawn parameters
            if self.issue_subtask(data):
                return
        reject()

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One action (see ACTIONS), drawn by weight among those possible now."""
        possible = [(name, weight) for name, weight, when in ACTIONS if when(self)]
        getattr(self, data.draw(weighted(possible), label="action"))(data)

    def issue_subtask(self, data: st.DataObject) -> bool:
        """The first subtask of a new task on the requestor; False when the app refused the task."""
        wire = self.session.requestor_wire()
        task_id, subtask_id = self.session.fresh_id("task"), self.session.fresh_id("subtask")
        spec = data.draw(self.session.tasks, label="task")
        created = wire.create_task(task_id, spec.max_subtasks, spec.params_json)
        if created.status is not Status.OK:
            return False
        reply = wire.next_subtask(task_id, subtask_id)
        if reply.status is not Status.OK or not reply.value().HasField("subtask"):
            return False  # the requestor's own properties report this
        subtask = reply.value().subtask
        self.subtasks.append(
            IssuedSubtask(task_id, subtask_id, subtask.subtask_params_json, list(subtask.resources))
        )
        return True

    def issue_another_subtask(self, data: st.DataObject) -> None:
        self.issue_subtask(data)

    # -- Compute ------------------------------------------------------------------------------

    def compute(self, data: st.DataObject) -> None:
        """A subtask as the requestor issued it, under its own id or any other valid one."""
        subtask = data.draw(st.sampled_from(self.subtasks))
        own_id, other_id = st.just(subtask.subtask_id), st.just(self.session.fresh_id("other"))
        subtask_id = data.draw(st.one_of(own_id, own_id, own_id, other_id))
        requestor_task_dir = self.session.requestor.work_dir / subtask.task_id
        copy_resources(subtask.resources, requestor_task_dir, self.server.work_dir)
        before = snapshot(self.server.work_dir, skip=skip_logs)
        expected = self.model.expect_compute(subtask_id, subtask.params_json)
        reply = self.wire.compute(subtask.task_id, subtask_id, subtask.params_json)
        ok = self.expect(f"Compute({subtask_id!r})", reply, expected)
        self._after_call("Compute")
        if not ok:
            return
        try:
            output = output_file(self.server.work_dir, reply.value().output_filepath)
        except ProtocolMismatch as exc:
            self.checks.fail_and_drop(PROTOCOL, str(exc))
            return
        outside = compute_changes(before, snapshot(self.server.work_dir, skip=skip_logs), subtask_id)
        self.checks.check(
            "compute_writes_only_subtask_dir",
            not outside,
            f"Compute({subtask_id!r}) wrote outside {subtask_id}/: {', '.join(outside[:8])}",
        )
        content = output.read_bytes()
        shutil.rmtree(self.server.work_dir / subtask_id, ignore_errors=True)  # as a node cleans up
        if subtask_id == subtask.subtask_id and not subtask.verified:
            self._verify_on_requestor(subtask, output.name, content)

    def compute_bad_request(self, data: st.DataObject) -> None:
        """One fault: a malformed subtask id, or parameters that are not a JSON object."""
        subtask = data.draw(st.sampled_from(self.subtasks))
        subtask_id, params_json = subtask.subtask_id, subtask.params_json
        if data.draw(st.booleans()):
            subtask_id = data.draw(BAD_IDS)
        else:
            params_json = data.draw(BAD_JSON)
        expected = self.model.expect_compute(subtask_id, params_json)
        reply = self.wire.compute(subtask.task_id, subtask_id, params_json)
        self.expect(f"Compute({subtask_id!r}, {params_json!r})", reply, expected)
        self._after_call("Compute")

    def _verify_on_requestor(self, subtask: IssuedSubtask, name: str, content: bytes) -> None:
        task_dir = self.session.requestor.work_dir / subtask.task_id
        deliver(task_dir, subtask.subtask_id, name, content)
        reply = self.session.requestor_wire().verify(subtask.task_id, subtask.subtask_id)
        if reply.status is not Status.OK:
            reject()  # the requestor's protocol is the requestor machine's business
        verdict = Verdict(reply.value().result)
        self.checks.check(
            "verify_accepts_honest_result",
            verdict is Verdict.SUCCESS,
            f"the provider's output of subtask {subtask.subtask_id} got {verdict.name} from the requestor's "
            f"Verify ({reply.value().reason!r})",
        )
        subtask.verified = True

    # -- Shutdown and the next server ---------------------------------------------------------

    def shutdown(self, data: st.DataObject) -> None:
        self.expect("Shutdown", self.wire.shutdown(), self.model.expect_shutdown())
        self._after_call("Shutdown")

    def _after_call(self, rpc: str) -> None:
        """Tell the model; a server that the call ended must exit, with code 0."""
        was_shut_down = self.model.shut_down
        self.model.called(rpc)
        if self.model.shut_down and not was_shut_down:
            code = self.server.wait_exit(self.session.config.shutdown_bound_s)
            if code != 0:
                self.server.kill()
                self.checks.fail_and_drop(
                    PROTOCOL,
                    f"the provider did not exit with code 0 after {rpc} (exit code {code}, killed after "
                    f"{self.session.config.shutdown_bound_s:.0f} s if it still ran): "
                    f"{self.server.log_tail()}",
                )

    def restart_persistent_server(self, data: st.DataObject) -> None:
        self.restarts_left -= 1
        self.server.start()
        self.model.server_restarted()


def _always(machine: ProviderMachine) -> bool:
    return True


ACTIONS: tuple[tuple[str, int, Callable[[ProviderMachine], bool]], ...] = (
    ("compute", 4, _always),
    ("issue_another_subtask", 2, _always),
    ("compute_bad_request", 3, _always),
    ("shutdown", 1, lambda machine: machine.may_shut_down),
    ("restart_persistent_server", 2, lambda machine: machine.model.shut_down and machine.restarts_left > 0),
)
"""Every action of the machine: its method, its weight, and when it is possible."""
