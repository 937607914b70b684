"""The requestor's scheduling decisions as a pure core: events in, actions out.

`SchedulingCore.handle(event)` takes one thing that happened (a provider asks for work, the app offers a
subtask, a verdict, a lease ran out, a tick of the clock...) and returns the actions it calls for (assign
this copy, ask the app for a subtask, want a replica, set a subtask's state, drop a provider from a task,
fail or finish a task...), in the order they must run. The core does no I/O: no SQLite, no gRPC, no
asyncio, no clock (time comes in the events). `RequestorNode` (requestor.py) is the shell around it: it
turns calls and timers into events, runs the actions against the store and the app, and feeds the
answers back as events (dask's `WorkerState.handle_stimulus` is the model).

What the core keeps:
- the joined providers' offers;
- per open task (`TaskPlan`): its live copies (requested, wanted, assigned or delivered subtasks: primaries
  and their replicas) with provider and lease deadline, the providers that refused it or were dropped from
  it, its failure budget, its app's NextSubtask errors in a row, since when no provider may take it;
- the rounds of RequestWork in progress (`Round`: which tasks a provider may still be given, how many
  slots are left, how many of the app's answers it awaits).

A round asks the app for all the slots it can fill from one task at once: one AskApp per slot, in a row,
which the shell sends as one NextSubtasks call; the round moves on once every answer is in (to the same
task while the app offered a subtask for each, else to the next).

The store stays the durable record (every action that changes a subtask is written there by the shell);
a restarted shell rebuilds the core from it (`TaskOpened` carries a task's live copies).

Invariants the core keeps (tests/node/test_scheduling_core.py drives it with Hypothesis):
- a provider never holds more than its offer's capacity plus queue (requested and assigned copies count),
  nor is given more than the slots it asked for in one round; beyond its capacity it gets a task's
  subtasks only once the task's delivered results show short computes;
- two live copies of one subtask never go to the same provider, and a subtask has more than one live copy
  only while its task wants replicas (quorum > 1);
- no action names a task once the core has failed, finished or closed it;
- a task fails once its failures exceed `max_failures`, or its app failed `max_app_errors` NextSubtask
  calls in a row (a call of several asks counts once), or no joined provider may take it for
  `stranded_ms`, each with a reason naming it;
- a provider that caused `max_provider_failures` failures in a task is dropped from it; once a provider is
  shut out of a task (dropped, caught with a wrong result, or refused its app), its further failures there
  (copies it still held, results on their way) do not count against the task's budget;
- a task is finished only when none of its copies is live and the app says nothing is pending.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.node.market import MarketStrategy, ProviderOffer
from runtime.node.states import FAILURE_STATES, SubtaskState

COMPUTING_STATES = (SubtaskState.REQUESTED, SubtaskState.ASSIGNED)
"""Copies that take a place among what their provider holds, computing or queued (capacity + queue; a
delivered one is no longer computed)."""
LIVE = frozenset({SubtaskState.REQUESTED, SubtaskState.WANTED, SubtaskState.ASSIGNED, SubtaskState.DELIVERED})
MAX_SLOTS = 64
"""The most subtasks one RequestWork may be given."""
LEASE_EXPIRED = "lease expired"
"""The reason of a copy whose lease ran out."""


@dataclass(frozen=True)
class Budgets:
    """The limits the core decides by (RequestorConfig's, in the core's units)."""

    lease_ms: int = 30_000
    max_failures: int = 20
    """Failed, rejected or expired subtasks a task survives."""
    max_provider_failures: int = 3
    """Failures one provider may cause in a task before it gets no more of its subtasks."""
    max_app_errors: int = 5
    """NextSubtask calls in a row a task's app may fail before the task fails."""
    stranded_ms: int = 60_000
    """How long a task may go with no live copy while every joined provider is shut out of it."""
    queue_compute_ms: int = 100
    """A task's subtasks fill places in providers' queues (beyond their capacity) only while its latest
    delivered result shows a compute this short: a queued assignment then holds back at most this much work
    at the task's end. Until its first delivery a task's compute time is unknown, and providers get their
    capacity alone."""


@dataclass(frozen=True)
class TaskSpec:
    """What the core needs to know of a task to place its work."""

    task_id: str
    env_id: str
    params: dict[str, Any]
    min_memory_mib: int = 0
    quorum: int = 1
    """Copies of each subtask wanted (1: no replicas; see quorum.py)."""


@dataclass
class Copy:
    """One live subtask: a primary (the app's) or a replica of one."""

    subtask_id: str
    task_id: str
    provider_id: str
    """"" while a replica is wanted."""
    state: SubtaskState
    replica_of: str | None = None
    deadline_ms: int = 0


@dataclass
class TaskPlan:
    """The core's view of one open task."""

    spec: TaskSpec
    copies: dict[str, Copy] = field(default_factory=dict)
    """Live copies, in creation order."""
    refused_by: set[str] = field(default_factory=set)
    """Providers that get no more of its subtasks: refused its app, or delivered a result found wrong (and,
    after a restart, those dropped from it before)."""
    dropped: set[str] = field(default_factory=set)
    """Providers dropped for causing `max_provider_failures` failures."""
    failures: int = 0
    failures_by_provider: Counter[str] = field(default_factory=Counter)
    app_errors: int = 0
    stranded_since_ms: int | None = None
    compute_ms: int | None = None
    """What its latest delivered result's compute took, as its provider reported it (one slow start, such
    as an app server's, is forgotten at the next delivery)."""

    def shuts_out(self, provider_id: str) -> bool:
        """Whether the provider gets no more of its subtasks: dropped, caught with a wrong result, or refused
        its app."""
        return provider_id in self.refused_by or provider_id in self.dropped

    @property
    def idle(self) -> bool:
        return not self.copies


@dataclass
class Round:
    """One RequestWork in progress: the tasks its provider may still be given, in order."""

    provider_id: str
    slots: int
    now_ms: int
    task_ids: list[str]
    given: int = 0
    asking: int = 0
    """AskApps of its current task whose answer has not come."""
    refused: bool = False
    """An answer of its current asks brought no subtask: the round moves on to its next task."""
    app_failed: bool = False
    """An answer of its current asks was an app error (counted once for the call)."""


# events


@dataclass(frozen=True)
class TaskOpened:
    """A task became active (created, or resumed with its live copies, the past failures that count
    against its budget, and the providers dropped from it for good: caught with a wrong result, or past
    max_provider_failures)."""

    spec: TaskSpec
    copies: tuple[Copy, ...] = ()
    failures: int = 0
    shut_out: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TaskClosed:
    """The task ended outside the core (aborted by the operator, or the shell failed it)."""

    task_id: str


@dataclass(frozen=True)
class ProviderJoined:
    offer: ProviderOffer


@dataclass(frozen=True)
class ProviderLeft:
    """Its assigned copies go back at once (not blamed), not at lease expiry."""

    provider_id: str


@dataclass(frozen=True)
class ProviderAsked:
    """RequestWork: up to `slots` subtasks for a joined provider. `excluded`: tasks the provider may not
    take for reasons kept outside the core (caught forging, blacklisted: verification.py)."""

    round_id: int
    provider_id: str
    slots: int
    now_ms: int
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SubtaskOffered:
    """The app answered NextSubtask with a subtask (its resources checked). `payload` is the shell's own
    (parameters, resources) and comes back in `Assign`."""

    round_id: int
    subtask_id: str
    now_ms: int
    payload: Any = None


@dataclass(frozen=True)
class NoSubtask:
    """The app answered NextSubtask with nothing to hand out."""

    round_id: int
    subtask_id: str


@dataclass(frozen=True)
class AppFailed:
    """NextSubtask failed on the app (`bad_resource`: it answered, naming resources it did not write)."""

    round_id: int
    subtask_id: str
    message: str
    bad_resource: bool = False


@dataclass(frozen=True)
class RequestBroken:
    """A NextSubtask whose answer never came (connection lost; or a restart: `round_id` None)."""

    round_id: int | None
    subtask_id: str
    reason: str


@dataclass(frozen=True)
class RoundAbandoned:
    """The RequestWork ended early (its caller was cancelled); its requested copy stays for a restart."""

    round_id: int


@dataclass(frozen=True)
class LeasesRenewed:
    provider_id: str
    subtask_ids: tuple[str, ...]
    deadline_ms: int


@dataclass(frozen=True)
class ResultDelivered:
    subtask_id: str
    compute_ms: int
    """What its compute took, as its provider reported it."""


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class VerificationDone:
    """The verdict on a delivered primary (the app's Verify and the rest of the ladder)."""

    subtask_id: str
    verdict: Verdict
    reason: str = ""


@dataclass(frozen=True)
class CopyJudged:
    """A copy settled by its quorum outside the app's Verify (`refuse`: its provider forged)."""

    subtask_id: str
    state: SubtaskState
    reason: str
    refuse: bool = False


@dataclass(frozen=True)
class RefereeWanted:
    """A quorum's results disagree and a referee is left: one more replica of the primary."""

    primary_id: str


@dataclass(frozen=True)
class TakenBack:
    """A copy goes back: reported failed, result refused, inconclusive, no quorum. `refuse`: its provider
    refused the task's app; `blame`: the failure counts against the provider."""

    subtask_id: str
    state: SubtaskState
    reason: str
    blame: bool = True
    refuse: bool = False


@dataclass(frozen=True)
class PendingAnswered:
    """The app answered whether the task has subtasks pending (asked by `CheckFinished`)."""

    task_id: str
    pending: bool


@dataclass(frozen=True)
class Tick:
    """The clock: leases past their deadline expire; stranded tasks fail. `excluded`: per task, the
    joined providers shut out of it outside the core; `dropped`: per task, every provider dropped from it
    (joined or not)."""

    now_ms: int
    excluded: Mapping[str, frozenset[str]] = field(default_factory=dict)
    dropped: Mapping[str, frozenset[str]] = field(default_factory=dict)


Event = (
    TaskOpened
    | TaskClosed
    | ProviderJoined
    | ProviderLeft
    | ProviderAsked
    | SubtaskOffered
    | NoSubtask
    | AppFailed
    | RequestBroken
    | RoundAbandoned
    | LeasesRenewed
    | ResultDelivered
    | VerificationDone
    | CopyJudged
    | RefereeWanted
    | TakenBack
    | PendingAnswered
    | Tick
)

# actions


@dataclass(frozen=True)
class AskApp:
    """Record a request under `subtask_id` for the provider and ask the app's NextSubtask; answer with
    SubtaskOffered, NoSubtask, AppFailed or RequestBroken."""

    round_id: int
    task_id: str
    subtask_id: str
    provider_id: str


@dataclass(frozen=True)
class Assign:
    """Hand a copy to the provider under a lease: a primary the app offered (`payload` as it came in
    SubtaskOffered) or a wanted replica (`payload` None)."""

    task_id: str
    subtask_id: str
    provider_id: str
    deadline_ms: int
    payload: Any = None


@dataclass(frozen=True)
class WantReplica:
    """Record one more copy of a primary, waiting for another provider."""

    task_id: str
    primary_id: str
    replica_id: str


@dataclass(frozen=True)
class ForgetRequest:
    """Drop a request the app answered with nothing (or failed)."""

    subtask_id: str


@dataclass(frozen=True)
class AbortOnApp:
    """The app returns the subtask's work to pending."""

    task_id: str
    subtask_id: str


@dataclass(frozen=True)
class SetState:
    subtask_id: str
    state: SubtaskState
    reason: str = ""
    forgiven: bool = False
    """A failure that does not count against the task's budget: its provider was already shut out."""


@dataclass(frozen=True)
class DropProvider:
    task_id: str
    provider_id: str
    reason: str


@dataclass(frozen=True)
class CheckFinished:
    """No copy of the task is live: ask the app whether anything is pending (answer: PendingAnswered)."""

    task_id: str


@dataclass(frozen=True)
class FinishTask:
    task_id: str


@dataclass(frozen=True)
class FailTask:
    task_id: str
    reason: str


Action = (
    AskApp
    | Assign
    | WantReplica
    | ForgetRequest
    | AbortOnApp
    | SetState
    | DropProvider
    | CheckFinished
    | FinishTask
    | FailTask
)


class SchedulingCore:
    """The decisions; see the module doc. `new_id(task_id)` names a new subtask of the task."""

    def __init__(self, budgets: Budgets, market: MarketStrategy, new_id: Callable[[str], str]) -> None:
        self.budgets = budgets
        self.market = market
        self._new_id = new_id
        self.offers: dict[str, ProviderOffer] = {}
        self.tasks: dict[str, TaskPlan] = {}
        self._rounds: dict[int, Round] = {}
        self._owner: dict[str, str] = {}
        """Live copy id -> its task id."""
        self._computing: Counter[str] = Counter()
        """Provider id -> its copies in COMPUTING_STATES."""

    # reading

    def copy(self, subtask_id: str) -> Copy | None:
        task_id = self._owner.get(subtask_id)
        return None if task_id is None else self.tasks[task_id].copies[subtask_id]

    def computing(self, provider_id: str) -> int:
        """Copies the provider holds to compute or queued (requested for it or assigned to it)."""
        return self._computing[provider_id]

    def shut_out(self, task_id: str, excluded: frozenset[str], dropped: frozenset[str]) -> str | None:
        """Why no joined provider may take the task, when none may and at least one was shut out (dropped,
        blacklisted, or refused its app); None while someone still may."""
        plan = self.tasks[task_id]
        out = {p for p in self.offers if plan.shuts_out(p) or p in excluded}
        if len(out) < len(self.offers):
            return None
        out |= dropped | plan.dropped
        if not out:
            return None
        return f"all {len(out)} provider(s) that came were dropped from it or refused its app"

    # the one entry point

    def handle(self, event: Event) -> list[Action]:
        """The actions `event` calls for, in order (the core's state already reflects them)."""
        match event:
            case TaskOpened():
                return self._opened(event)
            case TaskClosed(task_id):
                self._close(task_id)
                return []
            case ProviderJoined(offer):
                self.offers[offer.provider_id] = offer
                return []
            case ProviderLeft(provider_id):
                return self._left(provider_id)
            case ProviderAsked():
                return self._asked(event)
            case SubtaskOffered() | NoSubtask() | AppFailed() | RequestBroken():
                return self._answered(event)
            case RoundAbandoned(round_id):
                self._rounds.pop(round_id, None)
                return []
            case LeasesRenewed(provider_id, subtask_ids, deadline_ms):
                for subtask_id in subtask_ids:
                    copy = self.copy(subtask_id)
                    if copy is not None and copy.provider_id == provider_id:
                        copy.deadline_ms = deadline_ms
                return []
            case ResultDelivered():
                self._delivered(event)
                return []
            case VerificationDone():
                return self._verified(event)
            case CopyJudged(subtask_id, state, reason, refuse):
                return self._judged(subtask_id, state, reason, refuse)
            case RefereeWanted(primary_id):
                primary = self.copy(primary_id)
                return [] if primary is None else [self._want_replica(primary)]
            case TakenBack(subtask_id, state, reason, blame, refuse):
                return self._taken_back(subtask_id, state, reason, blame, refuse)
            case PendingAnswered(task_id, pending):
                plan = self.tasks.get(task_id)
                if pending or plan is None or not plan.idle:
                    return []
                self._close(task_id)
                return [FinishTask(task_id)]
            case Tick():
                return self._tick(event)

    # tasks

    def _opened(self, event: TaskOpened) -> list[Action]:
        plan = TaskPlan(event.spec, failures=event.failures, refused_by=set(event.shut_out))
        self.tasks[event.spec.task_id] = plan
        for copy in event.copies:
            if copy.state in LIVE:
                self._add(plan, copy)
        return []

    def _close(self, task_id: str) -> None:
        plan = self.tasks.get(task_id)
        if plan is not None:
            for copy in list(plan.copies.values()):
                self._remove(plan, copy)
            del self.tasks[task_id]

    def _add(self, plan: TaskPlan, copy: Copy) -> None:
        plan.copies[copy.subtask_id] = copy
        self._owner[copy.subtask_id] = plan.spec.task_id
        if copy.state in COMPUTING_STATES:
            self._computing[copy.provider_id] += 1

    def _move(self, copy: Copy, state: SubtaskState, provider_id: str | None = None) -> None:
        """A live copy changes state (and holder), its provider's computing count with it."""
        if copy.state in COMPUTING_STATES:
            self._computing[copy.provider_id] -= 1
        copy.state = state
        copy.provider_id = provider_id if provider_id is not None else copy.provider_id
        if state in COMPUTING_STATES:
            self._computing[copy.provider_id] += 1

    def _remove(self, plan: TaskPlan, copy: Copy) -> None:
        del plan.copies[copy.subtask_id]
        del self._owner[copy.subtask_id]
        if copy.state in COMPUTING_STATES:
            self._computing[copy.provider_id] -= 1

    def _set(self, plan: TaskPlan, copy: Copy, state: SubtaskState, reason: str = "") -> SetState:
        """A copy leaves play (every state but a live one). A failure counts against the task's budget
        unless its provider was already shut out of the task (dropped, or caught with a wrong result, or
        refused its app): what such a provider still held or delivered is its fault, bounded by its
        capacity + queue, and must not let one provider spend the whole budget."""
        self._remove(plan, copy)
        failure = state in FAILURE_STATES
        forgiven = failure and plan.shuts_out(copy.provider_id)
        if failure and not forgiven:
            plan.failures += 1
        return SetState(copy.subtask_id, state, reason, forgiven)

    def _fail(self, task_id: str, reason: str) -> FailTask:
        self._close(task_id)
        return FailTask(task_id, reason)

    def _finish_check(self, task_id: str) -> list[Action]:
        plan = self.tasks.get(task_id)
        return [CheckFinished(task_id)] if plan is not None and plan.idle else []

    # rounds: who gets what

    def _may_take(self, plan: TaskPlan, offer: ProviderOffer, excluded: frozenset[str]) -> bool:
        spec = plan.spec
        return (
            not plan.shuts_out(offer.provider_id)
            and spec.task_id not in excluded
            and self.market.accepts(offer, spec.env_id, spec.params)
            and offer.has_memory_for(spec.min_memory_mib)
        )

    def _asked(self, event: ProviderAsked) -> list[Action]:
        offer = self.offers.get(event.provider_id)
        if offer is None:
            return []
        task_ids = [
            task_id for task_id, plan in self.tasks.items() if self._may_take(plan, offer, event.excluded)
        ]
        slots = max(1, min(event.slots, MAX_SLOTS))
        self._rounds[event.round_id] = Round(event.provider_id, slots, event.now_ms, task_ids)
        return self._continue(event.round_id, [])

    def _room(self, round_: Round) -> int:
        """How many more copies the round may give of its current task: slots left, and places left in its
        provider's capacity, plus its queue if the task's computes are known to be short (requested copies
        count)."""
        offer = self.offers.get(round_.provider_id)
        if offer is None:
            return 0
        plan = self.tasks.get(round_.task_ids[0]) if round_.task_ids else None
        queue = offer.queue if plan is not None and self._queues(plan) else 0
        slots_left = round_.slots - round_.given - round_.asking
        return max(0, min(slots_left, offer.capacity + queue - self.computing(round_.provider_id)))

    def _delivered(self, event: ResultDelivered) -> None:
        copy = self.copy(event.subtask_id)
        if copy is None or copy.state is not SubtaskState.ASSIGNED:
            return
        self._move(copy, SubtaskState.DELIVERED)
        self.tasks[copy.task_id].compute_ms = event.compute_ms

    def _queues(self, plan: TaskPlan) -> bool:
        """Whether the task's subtasks may wait in providers' queues: its latest result computed quickly."""
        return plan.compute_ms is not None and plan.compute_ms <= self.budgets.queue_compute_ms

    def _has_room(self, round_: Round) -> bool:
        return self._room(round_) > 0

    def _continue(self, round_id: int, actions: list[Action]) -> list[Action]:
        """Give the round's provider copies until it is full or no task has any: stops at the first task
        whose app must be asked, with one AskApp for each place left."""
        round_ = self._rounds.get(round_id)
        while round_ is not None and round_.task_ids:
            plan = self.tasks.get(round_.task_ids[0])
            while plan is not None and self._has_room(round_):
                replica = self._replica_for(plan, round_.provider_id)
                if replica is None:
                    for _ in range(self._room(round_)):
                        request = Copy(
                            self._new_id(plan.spec.task_id),
                            plan.spec.task_id,
                            round_.provider_id,
                            SubtaskState.REQUESTED,
                        )
                        self._add(plan, request)
                        round_.asking += 1
                        actions.append(
                            AskApp(round_id, plan.spec.task_id, request.subtask_id, round_.provider_id)
                        )
                    return actions
                self._move(replica, SubtaskState.ASSIGNED, round_.provider_id)
                replica.deadline_ms = round_.now_ms + self.budgets.lease_ms
                round_.given += 1
                actions.append(
                    Assign(plan.spec.task_id, replica.subtask_id, replica.provider_id, replica.deadline_ms)
                )
            if not self._has_room(round_):
                break
            round_.task_ids.pop(0)
        self._rounds.pop(round_id, None)
        return actions

    def _replica_for(self, plan: TaskPlan, provider_id: str) -> Copy | None:
        """A wanted replica of the task whose subtask has no live copy with this provider."""
        for copy in plan.copies.values():
            if copy.state is not SubtaskState.WANTED:
                continue
            holders = {
                other.provider_id
                for other in plan.copies.values()
                if copy.replica_of in (other.subtask_id, other.replica_of)
            }
            if provider_id not in holders:
                return copy
        return None

    def _answered(self, event: SubtaskOffered | NoSubtask | AppFailed | RequestBroken) -> list[Action]:
        """The app's answer to an AskApp; once all the round's asks are answered, it moves on to its next
        task unless a subtask came for each."""
        actions: list[Action] = []
        copy = self.copy(event.subtask_id)
        plan = None if copy is None else self.tasks[copy.task_id]
        if plan is None or copy is None:
            pass  # the task ended while the app was asked: the shell aborted the request with it
        elif isinstance(event, SubtaskOffered):
            actions.extend(self._offered(plan, copy, event))
        elif isinstance(event, NoSubtask):
            self._remove(plan, copy)
            actions.append(ForgetRequest(copy.subtask_id))
            actions.extend(self._finish_check(plan.spec.task_id))
        elif isinstance(event, AppFailed):
            if event.bad_resource:
                reason = f"NextSubtask named a bad resource: {event.message}"
                actions.extend(self._take_back(plan, copy, SubtaskState.FAILED, reason, blame=False))
            else:
                self._remove(plan, copy)
                actions.append(ForgetRequest(copy.subtask_id))
            if self._first_failure_of_call(event.round_id):
                actions.extend(self._app_error(plan, event.message))
        else:
            actions.append(AbortOnApp(plan.spec.task_id, copy.subtask_id))
            actions.append(self._set(plan, copy, SubtaskState.ABANDONED, event.reason))
        if event.round_id is None:
            return actions
        round_ = self._rounds.get(event.round_id)
        if round_ is None:
            return actions
        round_.asking -= 1
        round_.refused |= not isinstance(event, SubtaskOffered)
        if round_.asking > 0:
            return actions
        if round_.refused and round_.task_ids:
            round_.task_ids.pop(0)
        round_.refused = round_.app_failed = False
        return self._continue(event.round_id, actions)

    def _first_failure_of_call(self, round_id: int) -> bool:
        """Whether an AppFailed is the first of its NextSubtasks call: one call counts once among the app's
        errors in a row, however many asks it carried."""
        round_ = self._rounds.get(round_id)
        if round_ is None:
            return True
        first, round_.app_failed = not round_.app_failed, True
        return first

    def _offered(self, plan: TaskPlan, copy: Copy, event: SubtaskOffered) -> list[Action]:
        round_ = self._rounds.get(event.round_id)
        self._move(copy, SubtaskState.ASSIGNED)
        copy.deadline_ms = event.now_ms + self.budgets.lease_ms
        plan.app_errors = 0
        if round_ is not None:
            round_.given += 1
            round_.now_ms = event.now_ms
        actions: list[Action] = [
            Assign(plan.spec.task_id, copy.subtask_id, copy.provider_id, copy.deadline_ms, event.payload)
        ]
        actions.extend(self._want_replica(copy) for _ in range(plan.spec.quorum - 1))
        return actions

    def _want_replica(self, primary: Copy) -> WantReplica:
        plan = self.tasks[primary.task_id]
        replica = Copy(
            self._new_id(primary.task_id),
            primary.task_id,
            "",
            SubtaskState.WANTED,
            replica_of=primary.subtask_id,
        )
        self._add(plan, replica)
        return WantReplica(primary.task_id, primary.subtask_id, replica.subtask_id)

    def _app_error(self, plan: TaskPlan, message: str) -> list[Action]:
        plan.app_errors += 1
        task_id = plan.spec.task_id
        if plan.app_errors >= self.budgets.max_app_errors and task_id in self.tasks:
            reason = f"the app failed {plan.app_errors} NextSubtask calls in a row; last: {message}"
            return [self._fail(task_id, reason)]
        return []

    # verdicts and failures

    def _verified(self, event: VerificationDone) -> list[Action]:
        copy = self.copy(event.subtask_id)
        if copy is None:
            return []
        plan = self.tasks[copy.task_id]
        if event.verdict is Verdict.ACCEPTED:
            return [self._set(plan, copy, SubtaskState.ACCEPTED), *self._finish_check(copy.task_id)]
        if event.verdict is Verdict.INCONCLUSIVE:
            return self._take_back(plan, copy, SubtaskState.FAILED, event.reason, blame=True)
        # A provider caught with a wrong result gets no more of this task's subtasks: else a fast cheater
        # burns the task's failure budget in a blink and the task fails.
        actions: list[Action] = [self._set(plan, copy, SubtaskState.REJECTED, event.reason)]
        plan.refused_by.add(copy.provider_id)
        actions.extend(self._count_failure(plan, f"subtask {copy.subtask_id} rejected: {event.reason}", None))
        actions.extend(self._finish_check(copy.task_id))
        return actions

    def _judged(self, subtask_id: str, state: SubtaskState, reason: str, refuse: bool) -> list[Action]:
        copy = self.copy(subtask_id)
        if copy is None:
            return []
        plan = self.tasks[copy.task_id]
        actions: list[Action] = [self._set(plan, copy, state, reason)]
        if refuse:
            plan.refused_by.add(copy.provider_id)
        if state in FAILURE_STATES:  # counted against the task's budget (not its provider's)
            actions.extend(self._count_failure(plan, f"subtask {subtask_id} {state}: {reason}", None))
        actions.extend(self._finish_check(copy.task_id))
        return actions

    def _taken_back(
        self, subtask_id: str, state: SubtaskState, reason: str, blame: bool, refuse: bool
    ) -> list[Action]:
        copy = self.copy(subtask_id)
        if copy is None:
            return []
        plan = self.tasks[copy.task_id]
        actions = self._take_back(plan, copy, state, reason, blame=blame)
        if refuse:
            plan.refused_by.add(copy.provider_id)
        return actions

    def _take_back(
        self, plan: TaskPlan, copy: Copy, state: SubtaskState, reason: str, *, blame: bool
    ) -> list[Action]:
        """A copy goes back: a replica is wanted again from another provider while its primary is live;
        a primary's work returns to pending on the app, its live replicas are cancelled with it. The
        failure is counted (against the provider too if `blame`)."""
        task_id = plan.spec.task_id
        actions: list[Action] = []
        if copy.replica_of is not None:
            actions.append(self._set(plan, copy, state, reason))
            primary = plan.copies.get(copy.replica_of)
            if primary is not None:
                actions.append(self._want_replica(primary))
        else:
            actions.append(AbortOnApp(task_id, copy.subtask_id))
            actions.append(self._set(plan, copy, state, reason))
            replicas = [c for c in plan.copies.values() if c.replica_of == copy.subtask_id]
            for replica in replicas:
                actions.append(
                    self._set(plan, replica, SubtaskState.ABORTED, f"its primary {state}: {reason}")
                )
        message = f"subtask {copy.subtask_id} {state}: {reason}"
        actions.extend(self._count_failure(plan, message, copy.provider_id if blame else None))
        # The work given back may not be needed any more: then the task is done now, not when some
        # provider next asks for work (perhaps never).
        actions.extend(self._finish_check(task_id))
        return actions

    def _count_failure(self, plan: TaskPlan, message: str, provider_id: str | None) -> list[Action]:
        """Drop a provider from the task at `max_provider_failures`; fail it past `max_failures`."""
        task_id = plan.spec.task_id
        if task_id not in self.tasks:
            return []
        actions: list[Action] = []
        if provider_id:
            plan.failures_by_provider[provider_id] += 1
            if plan.failures_by_provider[provider_id] == self.budgets.max_provider_failures:
                plan.dropped.add(provider_id)
                reason = f"{self.budgets.max_provider_failures} failures in this task; last: {message}"
                actions.append(DropProvider(task_id, provider_id, reason))
        if plan.failures > self.budgets.max_failures:
            reason = f"too many failures ({plan.failures}); last: {message}"
            actions.append(self._fail(task_id, reason))
        return actions

    # providers and the clock

    def _left(self, provider_id: str) -> list[Action]:
        actions: list[Action] = []
        for plan, copy in list(self._assigned()):
            if copy.provider_id == provider_id and plan.spec.task_id in self.tasks:
                actions.extend(
                    self._take_back(
                        plan, copy, SubtaskState.EXPIRED, f"provider {provider_id} left", blame=False
                    )
                )
        self.offers.pop(provider_id, None)
        return actions

    def _assigned(self) -> Iterator[tuple[TaskPlan, Copy]]:
        for plan in self.tasks.values():
            for copy in plan.copies.values():
                if copy.state is SubtaskState.ASSIGNED:
                    yield plan, copy

    def _tick(self, event: Tick) -> list[Action]:
        actions: list[Action] = []
        for plan, copy in list(self._assigned()):
            if copy.deadline_ms < event.now_ms and copy.subtask_id in self._owner:
                actions.extend(self._take_back(plan, copy, SubtaskState.EXPIRED, LEASE_EXPIRED, blame=True))
        for task_id, plan in list(self.tasks.items()):
            why = self.shut_out(
                task_id, event.excluded.get(task_id, frozenset()), event.dropped.get(task_id, frozenset())
            )
            if why is None or not plan.idle:
                plan.stranded_since_ms = None
            elif plan.stranded_since_ms is None:
                plan.stranded_since_ms = event.now_ms
            elif event.now_ms - plan.stranded_since_ms >= self.budgets.stranded_ms:
                seconds = self.budgets.stranded_ms / 1000
                actions.append(self._fail(task_id, f"no provider can take its work for {seconds:g} s: {why}"))
        return actions
