"""ProviderApp against the protocol, over real gRPC, in both of its modes.

Single-call (Golem's convention): a fresh server per Compute or RunBenchmark, which exits after that
one call. Persistent (`--persistent`): one server until Shutdown. The machine is the conformance suite's
`ProviderMachine` (Compute with valid and bad requests, Shutdown, restarts; output files, writes outside
the subtask dir, exit codes; every honest Compute output must pass the requestor's Verify), with what the
protocol tests require on top:

- single-call servers in half of the examples (the conformance suite: one in ten), so that a model that
  is wrong about them is caught;
- RunBenchmark between any other calls, on either kind of server (it ends a single-call one);
- the app's own requestor accepts every task of valid parameters and its Verify answers OK on the
  provider's output, where the conformance suite leaves the requestor to the requestor machine;
- a model that is wrong in one way makes the machine fail (the test of the test).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.stateful import initialize, precondition, rule, run_state_machine_as_test

from runtime.conformance.model import ProviderModel
from runtime.conformance.properties import Checks, PropertyViolation
from runtime.conformance.provider_machine import IssuedSubtask, ProviderMachine, ProviderServers
from runtime.conformance.session import Session
from runtime.conformance.strategies import one_in
from runtime.conformance.wire import stop

from .harness import check_score, machine_settings


class ProtocolProviderMachine(ProviderMachine):
    """The conformance provider machine with the model given, RunBenchmark, and a strict requestor."""

    def __init__(self, session: Session, servers: ProviderServers, model_type: type[ProviderModel]) -> None:
        super().__init__(session, servers, Checks())
        self.model_type = model_type
        self.model = model_type(single_call=False)
        self.benchmarks_left = 0

    @initialize(single_call=st.booleans(), may_restart=one_in(3), data=st.data())
    def start(self, single_call: bool, may_restart: bool, data: st.DataObject) -> None:
        """One server per single-call example (Golem's: one per call); persistent ones may restart once."""
        super().start(single_call, may_restart, data)
        self.model = self.model_type(single_call=single_call)

    @initialize(may_benchmark=one_in(4))
    def budget_benchmark(self, may_benchmark: bool) -> None:
        self.benchmarks_left = int(may_benchmark)

    def issue_subtask(self, data: st.DataObject) -> bool:
        """A new task's first subtask; the requestor must accept the task and hand one out."""
        issued = super().issue_subtask(data)
        self.checks.check(
            "requestor_protocol",
            issued,
            "the requestor refused a task of valid parameters, or handed out no subtask of a new task",
        )
        return issued

    def _verify_on_requestor(self, subtask: IssuedSubtask, name: str, content: bytes) -> None:
        """The provider's output must verify; a Verify that does not even answer OK fails here too
        (the conformance machine drops such an example and leaves Verify to the requestor machine)."""
        try:
            super()._verify_on_requestor(subtask, name, content)
        except UnsatisfiedAssumption:
            self.checks.check(
                "verify_accepts_honest_result",
                False,
                f"the requestor's Verify of the provider's output of subtask {subtask.subtask_id} did not "
                f"answer OK; requestor log: {self.session.requestor.log_tail()[-500:]}",
            )

    @precondition(lambda self: self.benchmarks_left > 0)
    @rule()
    def run_benchmark(self) -> None:
        self.benchmarks_left -= 1
        reply = self.wire.run_benchmark()
        ok = self.expect("RunBenchmark", reply, self.model.expect_run_benchmark())
        self._after_call("RunBenchmark")
        if ok:
            check_score(self.checks, "RunBenchmark", reply.value().score)


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture
def servers(session: Session) -> Iterator[ProviderServers]:
    """The provider servers of the run, the persistent one started, and the session's requestor started."""
    provider_servers = ProviderServers(session)
    session.requestor_wire()
    provider_servers.persistent_server()
    try:
        yield provider_servers
    finally:
        provider_servers.close()


def machine(
    session: Session, servers: ProviderServers, model: type[ProviderModel]
) -> type[ProtocolProviderMachine]:
    """The machine class Hypothesis runs, with `model` for every server."""

    class Machine(ProtocolProviderMachine):
        def __init__(self) -> None:
            super().__init__(session, servers, model)

    Machine.__name__ = f"ProviderMachine[{session.target.label()}, {model.__name__}]"
    return Machine


@pytest.mark.slow
def test_provider_app_follows_the_protocol(session: Session, servers: ProviderServers) -> None:
    run_state_machine_as_test(machine(session, servers, ProviderModel), settings=machine_settings())
    assert stop(servers.persistent_server()) == 0, servers.persistent.log_tail()
    assert stop(servers.single_call_server()) == 0
    assert stop(session.requestor) == 0, session.requestor.log_tail()


class EndlessSingleCallModel(ProviderModel):
    """Wrong: believes a single-call server keeps serving after its call."""

    def called(self, rpc: str) -> None:
        if rpc == "Shutdown":
            super().called(rpc)


@pytest.mark.slow
def test_a_wrong_provider_model_makes_the_machine_fail(session: Session, servers: ProviderServers) -> None:
    quick = machine_settings(
        max_examples=1000, database=None, phases=[Phase.generate], report_multiple_bugs=False
    )
    with pytest.raises(PropertyViolation, match="the app answered UNAVAILABLE") as caught:
        run_state_machine_as_test(machine(session, servers, EndlessSingleCallModel), settings=quick)
    assert caught.value.property_name == "provider_protocol"
