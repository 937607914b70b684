"""ProviderApp against the protocol, over real gRPC, in both of its modes.

Single-call (Golem's convention): a fresh server per Compute or RunBenchmark, which exits after that
one call. Persistent (`--persistent`): one server until Shutdown. Valid subtask parameters come from
the app's own RequestorApp (NextSubtask), and every honest Compute output must pass its Verify.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from grpclib.const import Status
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from runtime.conformance.model import ProviderModel, Verdict
from runtime.conformance.strategies import BAD_IDS, BAD_JSON, one_in

from .apps_under_test import AppUnderTest
from .harness import (
    AppServer,
    Loop,
    ProtocolMismatch,
    ProviderWire,
    RequestorWire,
    copy_resources,
    deliver,
    expect,
    machine_settings,
    output_file,
    stop,
)


@dataclass
class IssuedSubtask:
    """A subtask the requestor handed out, to be computed by the provider under test."""

    task_id: str
    subtask_id: str
    params_json: str
    resources: list[str]
    verified: bool = False


class ProviderEnv:
    """What a machine run shares across examples: a requestor that issues subtasks and verifies
    results, one persistent provider, and a spare single-call provider booting in the background."""

    def __init__(self, app: AppUnderTest, loop: Loop, root: Path) -> None:
        self.app = app
        self.loop = loop
        self.root = root
        self.requestor = AppServer(loop, app.command, "requestor", root / "requestor")
        self.requestor_wire = RequestorWire(self.requestor)
        self.persistent = AppServer(loop, app.command, "provider", root / "persistent", persistent=True)
        self._ids = itertools.count()
        self._spare: AppServer | None = None
        self._in_use: AppServer | None = None

    def fresh_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def persistent_server(self) -> AppServer:
        if not self.persistent.running:
            self.persistent.start()
        return self.persistent

    def single_call_server(self) -> AppServer:
        """A fresh single-call server (already booting), with the next one starting behind it.

        The server handed out before is done with: a machine uses only the latest one.
        """
        if self._in_use is not None:
            self._in_use.close()
        if self._spare is None:
            self._boot_spare()
        assert self._spare is not None
        self._in_use = self._spare
        self._boot_spare()
        return self._in_use

    def _boot_spare(self) -> None:
        work_dir = self.root / self.fresh_id("single-call")
        self._spare = AppServer(self.loop, self.app.command, "provider", work_dir, persistent=False)
        self._spare.start_in_background()

    def issue_subtask(self, data: st.DataObject) -> IssuedSubtask:
        """The first subtask of a new task on the requestor."""
        task_id, subtask_id = self.fresh_id("task"), self.fresh_id("subtask")
        params = json.dumps(data.draw(self.app.task_params))
        expect("requestor CreateTask", self.requestor_wire.create_task(task_id, 8, params), Status.OK)
        reply = self.requestor_wire.next_subtask(task_id, subtask_id)
        expect("requestor NextSubtask", reply, Status.OK)
        if not reply.value().HasField("subtask"):
            raise ProtocolMismatch("a new task has no subtask to hand out")
        subtask = reply.value().subtask
        return IssuedSubtask(task_id, subtask_id, subtask.subtask_params_json, list(subtask.resources))

    def close(self) -> None:
        for server in (self.requestor, self.persistent, self._spare, self._in_use):
            if server is not None:
                server.close()


class ProviderMachine(RuleBasedStateMachine):
    """Drives a provider server (persistent or single-call) and checks each reply against the model."""

    def __init__(self, env: ProviderEnv, model_type: type[ProviderModel]) -> None:
        super().__init__()
        self.env = env
        self.model_type = model_type
        self.model = model_type(single_call=False)
        self.server = env.persistent
        self.wire = ProviderWire(self.server)
        self.subtasks: list[IssuedSubtask] = []
        self.benchmarks_left = 0
        self.may_shut_down = False
        self.servers_left = 0  # restarts of the persistent server

    @initialize(single_call=st.booleans(), may_benchmark=one_in(4), may_restart=one_in(3), data=st.data())
    def start(self, single_call: bool, may_benchmark: bool, may_restart: bool, data: st.DataObject) -> None:
        """One server per single-call example (Golem's: one per call); persistent ones may restart once."""
        self.model = self.model_type(single_call=single_call)
        self.server = self.env.single_call_server() if single_call else self.env.persistent_server()
        self.wire = ProviderWire(self.server)
        self.benchmarks_left = int(may_benchmark)
        self.may_shut_down = single_call or may_restart
        self.servers_left = 1 if may_restart and not single_call else 0
        self.subtasks.append(self.env.issue_subtask(data))

    @rule(data=st.data())
    def issue_another_subtask(self, data: st.DataObject) -> None:
        self.subtasks.append(self.env.issue_subtask(data))

    # -- Compute ------------------------------------------------------------------------------

    @rule(data=st.data())
    def compute(self, data: st.DataObject) -> None:
        """A subtask as the requestor issued it, under its own id or any other valid one."""
        subtask = data.draw(st.sampled_from(self.subtasks))
        own_id, other_id = st.just(subtask.subtask_id), st.just(self.env.fresh_id("other"))
        subtask_id = data.draw(st.one_of(own_id, own_id, own_id, other_id))
        requestor_task_dir = self.env.requestor.work_dir / subtask.task_id
        copy_resources(subtask.resources, requestor_task_dir, self.server.work_dir)
        expected = self.model.expect_compute(subtask_id, subtask.params_json)
        reply = self.wire.compute(subtask.task_id, subtask_id, subtask.params_json)
        ok = expect(f"Compute({subtask_id!r})", reply, expected)
        self._after_call("Compute")
        if not ok:
            return
        output = output_file(self.server.work_dir, reply.value().output_filepath)
        if subtask_id == subtask.subtask_id and not subtask.verified:
            self._verify_on_requestor(subtask, output)

    @rule(data=st.data())
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
        expect(f"Compute({subtask_id!r}, {params_json!r})", reply, expected)
        self._after_call("Compute")

    def _verify_on_requestor(self, subtask: IssuedSubtask, output: Path) -> None:
        task_dir = self.env.requestor.work_dir / subtask.task_id
        deliver(task_dir, subtask.subtask_id, output.name, output.read_bytes())
        reply = self.env.requestor_wire.verify(subtask.task_id, subtask.subtask_id)
        expect("requestor Verify of the provider's output", reply, Status.OK)
        if Verdict(reply.value().result) is not Verdict.SUCCESS:
            raise ProtocolMismatch(f"the provider's honest output failed Verify: {reply.value().reason}")
        subtask.verified = True

    # -- RunBenchmark, Shutdown, the next server ---------------------------------------------------

    @precondition(lambda self: self.benchmarks_left > 0)
    @rule()
    def run_benchmark(self) -> None:
        self.benchmarks_left -= 1
        reply = self.wire.run_benchmark()
        ok = expect("RunBenchmark", reply, self.model.expect_run_benchmark())
        self._after_call("RunBenchmark")
        if ok and not (math.isfinite(reply.value().score) and reply.value().score > 0):
            raise ProtocolMismatch(f"RunBenchmark: score {reply.value().score} is not positive")

    @precondition(lambda self: self.may_shut_down)
    @rule()
    def shutdown(self) -> None:
        expect("Shutdown", self.wire.shutdown(), self.model.expect_shutdown())
        self._after_call("Shutdown")

    def _after_call(self, rpc: str) -> None:
        """Tell the model; a server that the call ended must exit, with code 0."""
        was_shut_down = self.model.shut_down
        self.model.called(rpc)
        if self.model.shut_down and not was_shut_down:
            code = self.server.wait_exit()
            if code != 0:
                raise ProtocolMismatch(
                    f"the provider exited with {code} after {rpc}: {self.server.log_tail()}"
                )

    @precondition(lambda self: self.model.shut_down and self.servers_left > 0)
    @rule()
    def restart_persistent_server(self) -> None:
        self.servers_left -= 1
        self.server.start()
        self.model.server_restarted()


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture
def provider_env(app: AppUnderTest, loop: Loop, tmp_path: Path) -> Iterator[ProviderEnv]:
    env = ProviderEnv(app, loop, tmp_path)
    env.requestor.start()
    env.persistent.start()
    yield env
    env.close()


def machine(env: ProviderEnv, model: type[ProviderModel]) -> type[ProviderMachine]:
    class Machine(ProviderMachine):
        def __init__(self) -> None:
            super().__init__(env, model)

    Machine.__name__ = f"ProviderMachine[{env.app.name}, {model.__name__}]"
    return Machine


@pytest.mark.slow
def test_provider_app_follows_the_protocol(provider_env: ProviderEnv) -> None:
    run_state_machine_as_test(machine(provider_env, ProviderModel), settings=machine_settings())
    assert stop(provider_env.persistent_server()) == 0, provider_env.persistent.log_tail()
    assert stop(provider_env.single_call_server()) == 0
    assert stop(provider_env.requestor) == 0, provider_env.requestor.log_tail()


class EndlessSingleCallModel(ProviderModel):
    """Wrong: believes a single-call server keeps serving after its call."""

    def called(self, rpc: str) -> None:
        if rpc == "Shutdown":
            super().called(rpc)


@pytest.mark.slow
def test_a_wrong_provider_model_makes_the_machine_fail(provider_env: ProviderEnv) -> None:
    quick = machine_settings(
        max_examples=1000, database=None, phases=[Phase.generate], report_multiple_bugs=False
    )
    with pytest.raises(ProtocolMismatch, match="the app answered UNAVAILABLE"):
        run_state_machine_as_test(machine(provider_env, EndlessSingleCallModel), settings=quick)
