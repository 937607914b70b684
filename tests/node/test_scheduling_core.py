"""The requestor's pure scheduling core (runtime/node/scheduling.py) as a Hypothesis state machine.

No store, no app, no sockets: the machine plays the shell and the app. It opens tasks (with and without
replicas), joins providers of random capacity and queue, and sends the core every event the shell sends:
RequestWork rounds (answering a round's AskApps for one task together, as the shell's one NextSubtasks call
does, each as an app would: a subtask, nothing, an error, a broken connection),
deliveries and verdicts (quorums settled as quorum.py would), failures, leaves, renewals, ticks of a
clock it advances, aborts. It keeps its own record of every subtask's state, built only from the core's
actions, and checks after each action:

- every SetState is a transition the store's table allows (states.py), from the state the actions led to;
- a provider never holds more requested and assigned copies than its capacity plus queue (its capacity
  alone with queue 0, as before the queue), nor gets more than the slots it asked for in one round;
- a round asks the app for one task at a time, all its asks for that task in a row;
- no provider holds two live copies of one subtask, and a task without replicas has one copy per subtask;
- no action names a task after it was failed, finished or closed;
- a task fails "too many failures" only past `max_failures` failures, and always then; "the app failed"
  only after `max_app_errors` NextSubtask errors in a row; a stranded task only after `stranded_ms`;
- a provider is dropped from a task exactly when it caused `max_provider_failures` failures there, and
  never gets a copy of that task afterwards, nor does one caught with a wrong result or refusing its app;
  once shut out so, its further failures there do not count against the task's budget;
- a task finishes only when none of its copies is live and its app has nothing pending or handed out.

Each example starts with a task and 1-3 providers. About a thousand steps a second on the loaded 2-core
development machine, most of it Hypothesis's own drawing (printed with -s; TASKAPI_CORE_EXAMPLES sets the
number of examples, default 150).
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from runtime.node.market import Balanced, ProviderOffer
from runtime.node.scheduling import (
    LEASE_EXPIRED,
    MAX_SLOTS,
    AbortOnApp,
    Action,
    AppFailed,
    AskApp,
    Assign,
    Budgets,
    CheckFinished,
    CopyJudged,
    DropProvider,
    Event,
    FailTask,
    FinishTask,
    ForgetRequest,
    LeasesRenewed,
    NoSubtask,
    PendingAnswered,
    ProviderAsked,
    ProviderJoined,
    ProviderLeft,
    RefereeWanted,
    RequestBroken,
    ResultDelivered,
    SchedulingCore,
    SetState,
    SubtaskOffered,
    TakenBack,
    TaskClosed,
    TaskOpened,
    TaskSpec,
    Tick,
    Verdict,
    VerificationDone,
    WantReplica,
)
from runtime.node.states import FAILURE_STATES, LIVE_SUBTASK_STATES, SUBTASK_TRANSITIONS, SubtaskState

S = SubtaskState
BUDGETS = Budgets(
    lease_ms=1_000, max_failures=3, max_provider_failures=2, max_app_errors=3, stranded_ms=3_000
)
PROVIDERS = ("p0", "p1", "p2", "p3")
VERDICTS = (Verdict.ACCEPTED, Verdict.ACCEPTED, Verdict.REJECTED, Verdict.INCONCLUSIVE)
"""Mostly accepted, so that tasks also finish."""
ENVS = ("wasm", "docker_cpu")
STEPS = {"steps": 0, "events": 0}


@dataclass
class SubtaskRecord:
    task_id: str
    provider_id: str
    state: SubtaskState
    replica_of: str | None = None


@dataclass
class AppTask:
    """The app's side of a task: work units not handed out, handed out (by primary id), done."""

    spec: TaskSpec
    units: int
    pending: int
    out: set[str] = field(default_factory=set)
    done: int = 0
    errors_in_a_row: int = 0
    failures: int = 0
    blamed: Counter[str] = field(default_factory=Counter)
    dropped: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    """Providers caught with a wrong result or refusing its app: shut out of it, as the dropped are."""
    stranded_since: int | None = None
    compute_ms: int | None = None
    """What its latest delivered result's compute took, as reported."""

    def queues(self) -> bool:
        """Whether its subtasks may fill providers' queues: its results show short computes."""
        return self.compute_ms is not None and self.compute_ms <= BUDGETS.queue_compute_ms


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ids = 0
        self.core = SchedulingCore(BUDGETS, Balanced(), self.new_id)
        self.now = 0
        self.rounds = 0
        self.tasks: dict[str, AppTask] = {}
        self.ended: set[str] = set()
        self.subtasks: dict[str, SubtaskRecord] = {}
        self.offers: dict[str, ProviderOffer] = {}
        self.given: Counter[str] = Counter()
        """Assignments per provider in the round being driven."""
        self.checks: list[str] = []
        """Tasks whose HasPendingSubtasks is on its way (other events may come first, as in the shell)."""
        self.asked: set[tuple[int, str]] = set()
        """(round, task) of the NextSubtasks call being answered."""
        self.call_failed = False
        """An ask of the call being answered failed."""

    def new_id(self, task_id: str) -> str:
        self.ids += 1
        return f"{task_id}-s{self.ids}"

    # driving the core as the shell does

    def drive(self, event: Event, data: st.DataObject) -> None:
        """Feed an event; run its actions depth-first, answering the app's calls, checking each action."""
        STEPS["events"] += 1
        queue = list(self.core.handle(event))
        while queue:
            action = queue.pop(0)
            if isinstance(action, AskApp):
                batch = [action]
                while queue and isinstance(queue[0], AskApp) and self.same_call(queue[0], action):
                    batch.append(queue.pop(0))  # type: ignore[arg-type]
                queue[:0] = self.ask_app(batch, data)
            else:
                queue[:0] = self.act(action, data)

    @staticmethod
    def same_call(ask: AskApp, first: AskApp) -> bool:
        return (ask.round_id, ask.task_id) == (first.round_id, first.task_id)

    def ask_app(self, batch: list[AskApp], data: st.DataObject) -> list[Action]:
        """The shell's one NextSubtasks call for a round's asks of one task: every answer fed back in order,
        their actions run after."""
        first = batch[0]
        assert first.task_id not in self.ended, f"{first} names task {first.task_id}, which ended"
        assert (first.round_id, first.task_id) not in self.asked, f"task {first.task_id} asked twice at once"
        for ask in batch:
            assert ask.subtask_id not in self.subtasks
            self.subtasks[ask.subtask_id] = SubtaskRecord(ask.task_id, ask.provider_id, S.REQUESTED)
            self.check_capacity(ask.provider_id, self.tasks[ask.task_id])
        self.asked.add((first.round_id, first.task_id))
        self.call_failed = False
        follow_up: list[Action] = []
        for ask in batch:
            if any(isinstance(action, FailTask) for action in follow_up):
                # The core failed the task on an earlier answer of this call and forgot its copies: what
                # the call says about the rest changes nothing (nor may it change the model's counts).
                follow_up.extend(self.core.handle(NoSubtask(ask.round_id, ask.subtask_id)))
                continue
            follow_up.extend(self.core.handle(self.app_answer(ask.round_id, ask.subtask_id, data)))
        self.asked.discard((first.round_id, first.task_id))
        return follow_up

    def act(self, action: Action, data: st.DataObject) -> list[Action]:
        task_id = getattr(action, "task_id", None)
        if task_id is None and isinstance(action, SetState | ForgetRequest):
            task_id = self.subtasks[action.subtask_id].task_id
        assert task_id not in self.ended, f"{action} names task {task_id}, which ended"
        match action:
            case Assign(task_id, subtask_id, provider_id, deadline_ms, _):
                record = self.subtasks[subtask_id]
                self.move(subtask_id, S.ASSIGNED)
                assert deadline_ms == self.now + BUDGETS.lease_ms
                app = self.tasks[task_id]
                assert provider_id not in app.dropped | app.refused, f"{provider_id} was shut out"
                record.provider_id = provider_id
                primary = record.replica_of or subtask_id
                holders = [
                    r.provider_id
                    for sid, r in self.subtasks.items()
                    if primary in (sid, r.replica_of) and r.state in LIVE_SUBTASK_STATES and r.provider_id
                ]
                assert len(holders) == len(set(holders)), f"{primary} held twice by one provider: {holders}"
                self.given[provider_id] += 1
                self.check_capacity(provider_id, self.tasks[task_id])
            case WantReplica(task_id, primary_id, replica_id):
                assert self.tasks[task_id].spec.quorum > 1, "a replica of a task without a quorum"
                assert self.subtasks[primary_id].state in LIVE_SUBTASK_STATES
                self.subtasks[replica_id] = SubtaskRecord(task_id, "", S.WANTED, primary_id)
            case ForgetRequest(subtask_id):
                assert self.subtasks.pop(subtask_id).state is S.REQUESTED
            case AbortOnApp(task_id, subtask_id):
                app = self.tasks[task_id]
                if subtask_id in app.out:
                    app.out.discard(subtask_id)
                    app.pending += 1
            case SetState(subtask_id, state, reason, forgiven):
                record = self.subtasks[subtask_id]
                app = self.tasks[record.task_id]
                self.move(subtask_id, state)
                failure = state in FAILURE_STATES
                # a shut-out provider's leftovers are its own failures, not the task's
                shut_out = record.provider_id in app.dropped | app.refused
                assert forgiven == (failure and shut_out), f"{subtask_id} {state}: forgiven {forgiven}"
                if failure and not shut_out:
                    app.failures += 1
                if reason == LEASE_EXPIRED:
                    self.blame(record)
                if state is S.ACCEPTED and subtask_id in app.out:
                    app.out.discard(subtask_id)
                    app.done += 1
                if state is S.REJECTED and subtask_id in app.out:  # Verify FAILURE: the app redoes it
                    app.out.discard(subtask_id)
                    app.pending += 1
            case DropProvider(task_id, provider_id, _):
                app = self.tasks[task_id]
                assert app.blamed[provider_id] == BUDGETS.max_provider_failures, app.blamed
                app.dropped.add(provider_id)
            case CheckFinished(task_id):
                assert not self.live(task_id)
                self.checks.append(task_id)  # the app answers later (app_answers_a_check)
            case FinishTask(task_id):
                app = self.tasks[task_id]
                assert not self.live(task_id) and app.pending == 0 and not app.out
                assert app.done == app.units
                self.end(task_id)
            case FailTask(task_id, reason):
                app = self.tasks[task_id]
                if reason.startswith("too many failures"):
                    assert app.failures > BUDGETS.max_failures, (app.failures, reason)
                elif reason.startswith("the app failed"):
                    assert app.errors_in_a_row >= BUDGETS.max_app_errors, reason
                else:
                    assert reason.startswith("no provider can take its work for 3 s"), reason
                    assert app.stranded_since is not None
                    assert self.now - app.stranded_since >= BUDGETS.stranded_ms
                    assert not self.live(task_id)
                self.end(task_id)
        return []

    def app_answer(self, round_id: int, subtask_id: str, data: st.DataObject) -> Event:
        """What the app says to NextSubtask (a roll of the dice decides errors and broken calls)."""
        app = self.tasks[self.subtasks[subtask_id].task_id]
        roll = data.draw(st.integers(0, 7), "NextSubtask")
        if roll == 0:
            app.errors_in_a_row += 0 if self.call_failed else 1  # a call's errors count once
            self.call_failed = True
            return AppFailed(round_id, subtask_id, "boom", bad_resource=data.draw(st.booleans()))
        if roll == 1:
            return RequestBroken(round_id, subtask_id, "connection lost")
        if app.pending == 0:
            return NoSubtask(round_id, subtask_id)
        app.pending -= 1
        app.out.add(subtask_id)
        app.errors_in_a_row = 0
        return SubtaskOffered(round_id, subtask_id, self.now)

    def move(self, subtask_id: str, state: SubtaskState) -> None:
        record = self.subtasks[subtask_id]
        allowed = SUBTASK_TRANSITIONS[record.state]
        assert state in allowed, f"{subtask_id}: {record.state} -> {state} is not in the table"
        record.state = state

    def blame(self, record: SubtaskRecord) -> None:
        self.tasks[record.task_id].blamed[record.provider_id] += 1

    def computing(self, provider_id: str) -> int:
        return sum(
            r.provider_id == provider_id and r.state in (S.REQUESTED, S.ASSIGNED)
            for r in self.subtasks.values()
        )

    def check_capacity(self, provider_id: str, given_of: AppTask) -> None:
        """After the provider was given a copy of `given_of`'s: within its capacity, plus its queue only if
        that task's computes are known to be short."""
        computing = self.computing(provider_id)
        offer = self.offers[provider_id]
        assert computing <= offer.capacity + offer.queue, f"{provider_id} holds {computing}"
        if not given_of.queues():
            assert computing <= offer.capacity, (
                f"{provider_id} holds {computing} with a copy of {given_of.spec.task_id}, whose computes are"
                f" {given_of.compute_ms} ms: past its capacity {offer.capacity}"
            )

    def live(self, task_id: str, states: Iterable[SubtaskState] = LIVE_SUBTASK_STATES) -> list[str]:
        wanted = set(states)
        return [sid for sid, r in self.subtasks.items() if r.task_id == task_id and r.state in wanted]

    def end(self, task_id: str) -> None:
        """The shell aborts what is still live of an ended task."""
        self.ended.add(task_id)
        for sid in self.live(task_id):
            self.move(sid, S.ABORTED)

    def open_ids(self) -> list[str]:
        return [t for t in self.tasks if t not in self.ended]

    def copies_in(self, states: tuple[SubtaskState, ...]) -> list[str]:
        return sorted(
            sid for sid, r in self.subtasks.items() if r.state in states and r.task_id not in self.ended
        )

    # rules

    @initialize(
        quorum=st.sampled_from((1, 2)),
        units=st.integers(1, 4),
        capacities=st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2)), min_size=1, max_size=3),
    )
    def a_task_and_providers(self, quorum: int, units: int, capacities: list[tuple[int, int]]) -> None:
        """Every example starts with work and someone to do it."""
        self.open_task(quorum, units, ENVS[0])
        for p, (capacity, queue) in zip(PROVIDERS, capacities, strict=False):
            self.join(p, capacity, queue, ENVS)

    @rule(quorum=st.sampled_from((1, 1, 2, 3)), units=st.integers(1, 4), env=st.sampled_from(ENVS))
    def open_task(self, quorum: int, units: int, env: str) -> None:
        task_id = f"t{len(self.tasks)}"
        spec = TaskSpec(task_id, env, {}, quorum=quorum)
        self.tasks[task_id] = AppTask(spec, units, units)
        assert self.core.handle(TaskOpened(spec)) == []

    @rule(
        p=st.sampled_from(PROVIDERS),
        capacity=st.integers(1, 3),
        queue=st.sampled_from((0, 0, 1, 2)),
        envs=st.sampled_from((ENVS, ENVS[:1])),
    )
    def join(self, p: str, capacity: int, queue: int, envs: tuple[str, ...]) -> None:
        offer = ProviderOffer(p, dict.fromkeys(envs, 1.0), 0.0, capacity, queue=queue)
        # A provider joins again with its offer unchanged, as long as it holds copies.
        offer = self.offers.get(p, offer)
        self.offers[p] = offer
        assert self.core.handle(ProviderJoined(offer)) == []

    @precondition(lambda self: self.offers)
    @rule(data=st.data(), slots=st.integers(0, 5))
    def request_work(self, data: st.DataObject, slots: int) -> None:
        provider_id = data.draw(st.sampled_from(sorted(self.offers)), "provider")
        self.rounds += 1
        self.given.clear()
        self.drive(ProviderAsked(self.rounds, provider_id, slots, self.now), data)
        assert self.given[provider_id] <= max(1, min(slots, MAX_SLOTS))

    @precondition(lambda self: self.offers)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        provider_id = data.draw(st.sampled_from(sorted(self.offers)), "leaving")
        self.drive(ProviderLeft(provider_id), data)
        assert not [
            r for r in self.subtasks.values() if r.provider_id == provider_id and r.state is S.ASSIGNED
        ]
        del self.offers[provider_id]

    @precondition(lambda self: self.copies_in((S.ASSIGNED,)))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        subtask_id = data.draw(st.sampled_from(self.copies_in((S.ASSIGNED,))), "delivered")
        compute_ms = data.draw(st.sampled_from((1, BUDGETS.queue_compute_ms, 5_000)), "compute ms")
        app = self.tasks[self.subtasks[subtask_id].task_id]
        app.compute_ms = compute_ms
        self.drive(ResultDelivered(subtask_id, compute_ms), data)
        self.move(subtask_id, S.DELIVERED)
        record = self.subtasks[subtask_id]
        primary = record.replica_of or subtask_id
        spec = self.tasks[record.task_id].spec
        copies = [sid for sid, r in self.subtasks.items() if primary in (sid, r.replica_of)]
        live = [sid for sid in copies if self.subtasks[sid].state in LIVE_SUBTASK_STATES]
        if any(self.subtasks[sid].state is not S.DELIVERED for sid in live) or primary not in live:
            return  # the quorum is not complete (or its primary went back)
        if spec.quorum == 1:
            verdict = data.draw(st.sampled_from(VERDICTS), "verdict")
            if verdict is Verdict.INCONCLUSIVE:  # taken back, blamed (a rejection refuses instead)
                self.blame(record)
            self.drive(VerificationDone(primary, verdict, "judged"), data)
            if verdict is Verdict.REJECTED:
                self.tasks[record.task_id].refused.add(record.provider_id)
            return
        outcome = data.draw(st.sampled_from(("accept", "accept", "reject", "referee", "no quorum")), "quorum")
        replicas = [sid for sid in live if sid != primary]
        if outcome == "referee":
            self.drive(RefereeWanted(primary), data)
        elif outcome == "no quorum":
            for replica in replicas:
                self.drive(CopyJudged(replica, S.FAILED, "inconclusive"), data)
            self.blame(self.subtasks[primary])
            self.drive(TakenBack(primary, S.FAILED, "no quorum"), data)
        else:
            verdict = Verdict.ACCEPTED if outcome == "accept" else Verdict.REJECTED
            self.drive(VerificationDone(primary, verdict, outcome), data)
            if verdict is Verdict.REJECTED:
                self.tasks[record.task_id].refused.add(self.subtasks[primary].provider_id)
            state = S.ACCEPTED if outcome == "accept" else S.REJECTED
            for replica in replicas:
                self.drive(CopyJudged(replica, state, outcome), data)

    @precondition(lambda self: self.copies_in((S.ASSIGNED,)))
    @rule(data=st.data(), refused=st.booleans())
    def report_failure(self, data: st.DataObject, refused: bool) -> None:
        subtask_id = data.draw(st.sampled_from(self.copies_in((S.ASSIGNED,))), "failed")
        self.blame(self.subtasks[subtask_id])
        self.drive(TakenBack(subtask_id, S.FAILED, "provider failed", refuse=refused), data)
        if refused:
            record = self.subtasks[subtask_id]
            self.tasks[record.task_id].refused.add(record.provider_id)

    @precondition(lambda self: self.offers)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        provider_id = data.draw(st.sampled_from(sorted(self.offers)), "heartbeat")
        held = tuple(
            sid for sid, r in self.subtasks.items() if r.provider_id == provider_id and r.state is S.ASSIGNED
        )
        self.drive(LeasesRenewed(provider_id, held, self.now + BUDGETS.lease_ms), data)

    @rule(data=st.data(), ms=st.sampled_from((0, 400, 1_200, 3_500)))
    def tick(self, data: st.DataObject, ms: int) -> None:
        self.now += ms
        self.drive(Tick(self.now), data)
        for task_id in self.open_ids():  # as the core samples it: after the tick's expiries
            app = self.tasks[task_id]
            shut_out = self.core.shut_out(task_id, frozenset(), frozenset())
            if shut_out is None or self.live(task_id):
                app.stranded_since = None
            elif app.stranded_since is None:
                app.stranded_since = self.now
        for task_id in self.open_ids():
            for sid in self.live(task_id, (S.ASSIGNED,)):
                copy = self.core.copy(sid)
                assert copy is not None and copy.deadline_ms >= self.now, (
                    f"{sid}'s lease outlived its deadline"
                )

    @precondition(lambda self: self.checks)
    @rule(data=st.data())
    def app_answers_a_check(self, data: st.DataObject) -> None:
        task_id = self.checks.pop(data.draw(st.integers(0, len(self.checks) - 1), "check answered"))
        if task_id not in self.ended:  # else the shell no longer asks
            self.drive(PendingAnswered(task_id, self.tasks[task_id].pending > 0), data)

    @precondition(lambda self: self.open_ids())
    @rule(data=st.data(), roll=st.integers(0, 15))
    def abort(self, data: st.DataObject, roll: int) -> None:
        if roll != 7:  # an abort ends a task's story: keep it rare (not on 0, which Hypothesis favours)
            return
        task_id = data.draw(st.sampled_from(self.open_ids()), "aborted")
        assert self.core.handle(TaskClosed(task_id)) == []
        self.end(task_id)

    # invariants

    @invariant()
    def the_core_agrees_with_the_actions(self) -> None:
        STEPS["steps"] += 1
        for task_id in self.open_ids():
            plan = self.core.tasks[task_id]
            assert set(plan.copies) == set(self.live(task_id)), task_id
            for sid, copy in plan.copies.items():
                assert copy.state is self.subtasks[sid].state
            app = self.tasks[task_id]
            assert plan.failures == app.failures <= BUDGETS.max_failures
            assert plan.app_errors == app.errors_in_a_row < BUDGETS.max_app_errors
            if app.spec.quorum == 1:
                assert all(copy.replica_of is None for copy in plan.copies.values())
            for provider_id, blamed in app.blamed.items():
                assert (blamed >= BUDGETS.max_provider_failures) == (provider_id in app.dropped)
        assert not set(self.core.tasks) & self.ended

    @invariant()
    def no_provider_is_over_capacity(self) -> None:
        for provider_id, offer in self.offers.items():
            held = self.core.computing(provider_id)
            assert held == self.computing(provider_id) <= offer.capacity + offer.queue


def test_the_scheduling_core_keeps_its_invariants() -> None:
    STEPS.update(steps=0, events=0)
    started = time.perf_counter()
    run_state_machine_as_test(
        CoreMachine,
        settings=settings(
            max_examples=int(os.environ.get("TASKAPI_CORE_EXAMPLES", "150")),
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    elapsed = time.perf_counter() - started
    steps, events = STEPS["steps"], STEPS["events"]
    print(
        f"scheduling core: {steps} steps, {events} events in {elapsed:.2f} s ({steps / elapsed:.0f} steps/s)"
    )


def asks_of_a_round(
    capacity: int, queue: int, slots: int, pending: int, compute_ms: int | None = 1
) -> list[list[AskApp]]:
    """The NextSubtasks calls (the AskApps of each batch) one RequestWork round makes for a provider with
    this capacity and queue, the app offering `pending` subtasks and then none; before it, another provider
    delivered one of the task's results, computed in `compute_ms` (None: no result yet)."""
    ids = itertools.count()
    core = SchedulingCore(BUDGETS, Balanced(), lambda task_id: f"{task_id}-{next(ids)}")
    core.handle(TaskOpened(TaskSpec("t", "wasm", {})))
    if compute_ms is not None:
        core.handle(ProviderJoined(ProviderOffer("earlier", {"wasm": 1.0}, 0.0, 1)))
        (ask,) = core.handle(ProviderAsked(0, "earlier", 1, 0))
        assert isinstance(ask, AskApp)
        core.handle(SubtaskOffered(0, ask.subtask_id, 0))
        core.handle(ResultDelivered(ask.subtask_id, compute_ms))
    core.handle(ProviderJoined(ProviderOffer("p", {"wasm": 1.0}, 0.0, capacity, queue=queue)))
    calls: list[list[AskApp]] = []
    actions = core.handle(ProviderAsked(1, "p", slots, 0))
    while actions:
        batch = [action for action in actions if isinstance(action, AskApp)]
        if not batch:
            break
        calls.append(batch)
        actions = []
        for ask in batch:
            answer: Event = SubtaskOffered(1, ask.subtask_id, 0) if pending else NoSubtask(1, ask.subtask_id)
            pending = max(0, pending - 1)
            actions.extend(core.handle(answer))
    return calls


def test_a_round_asks_the_app_once_for_every_place_of_capacity_and_queue() -> None:
    assert [len(batch) for batch in asks_of_a_round(capacity=1, queue=2, slots=8, pending=10)] == [3]
    assert [len(batch) for batch in asks_of_a_round(capacity=2, queue=0, slots=8, pending=10)] == [2]
    assert [len(batch) for batch in asks_of_a_round(capacity=4, queue=4, slots=3, pending=10)] == [3]
    # The app had fewer than asked: the round moves on (no second call), as after one NoSubtask before.
    assert [len(batch) for batch in asks_of_a_round(capacity=4, queue=0, slots=8, pending=2)] == [4]


def test_a_task_fills_queues_only_once_its_results_show_short_computes() -> None:
    short, long = BUDGETS.queue_compute_ms, BUDGETS.queue_compute_ms + 1
    assert [len(batch) for batch in asks_of_a_round(1, 8, 9, 20, compute_ms=short)] == [9]
    assert [len(batch) for batch in asks_of_a_round(1, 8, 9, 20, compute_ms=long)] == [1]
    assert [len(batch) for batch in asks_of_a_round(2, 8, 9, 20, compute_ms=None)] == [2]
