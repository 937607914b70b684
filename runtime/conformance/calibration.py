"""Task parameters the app accepts, found once per run, for the properties that need tasks to work on.

The schema gives types, not ranges, so many drawn parameter sets are refused (tutorialapp: difficulty
above 40; mandelbrot: more parts than rows). The call-sequence machine keeps drawing from the whole
schema (refusals are part of what it checks); the properties that need a task that runs (the provider
machine, whole-task properties, Shutdown, determinism) draw from the sets the app accepted here, so
their examples are not spent on refusals. The probe is a seeded Hypothesis run: same seed, same sets.

Calibration also leans towards *cheap* tasks: it collects up to twice KEEP accepted sets and keeps the
smaller half of them (at most KEEP, at least 4) by `TaskSpec.size` (the sum of log(1 + |n|) over every
number in the parameters, numbers inside strings such as "320x240" included: the log of the product of
the task's dimensions), smallest first, so that a run of an app whose subtasks are costly (blenderapp:
frames x parts Blender renders) does not spend its time on its largest tasks. `--set` pins what the
schema cannot say is costly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grpclib.const import Status
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from runtime.conformance.strategies import MAX_SUBTASKS
from runtime.conformance.wire import RequestorWire

PROBES = 100
KEEP = 24
WIDTH = 4
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def value_size(value: Any) -> float:
    """How big a JSON value is: log(1 + |n|) summed over every number in it (strings' digits included)."""
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, int | float):
        return math.log1p(min(abs(value), 1e300))
    if isinstance(value, str):
        return sum(math.log1p(float(number)) for number in _NUMBER.findall(value[:1000]))
    if isinstance(value, list):
        return sum(value_size(item) for item in value)
    if isinstance(value, dict):
        return sum(value_size(item) for item in value.values())
    return 0.0


@dataclass(frozen=True)
class TaskSpec:
    """What CreateTask gets: max_subtasks_count and the parameters as JSON."""

    max_subtasks: int
    params_json: str

    def size(self) -> float:
        """`value_size` of the parameters: a proxy for how costly the task is (smaller is cheaper)."""
        return value_size(json.loads(self.params_json) if self.params_json else {})


@dataclass(frozen=True)
class Calibration:
    """The accepted task specs (with how many subtasks each had out at once, up to WIDTH), and how
    many specs were tried."""

    accepted: tuple[TaskSpec, ...]
    tried: int
    widths: tuple[int, ...] = ()
    found: int = 0
    """How many were accepted before the smallest were kept."""

    def strategy(self, fallback: st.SearchStrategy[TaskSpec]) -> st.SearchStrategy[TaskSpec]:
        """An accepted spec; `fallback` (drawn from the schema) when none was accepted."""
        return st.sampled_from(self.accepted) if self.accepted else fallback

    def wide_strategy(self, fallback: st.SearchStrategy[TaskSpec]) -> st.SearchStrategy[TaskSpec]:
        """An accepted spec that had several subtasks out at once (any accepted one if none had)."""
        wide = [spec for spec, width in zip(self.accepted, self.widths, strict=True) if width > 1]
        return st.sampled_from(wide) if wide else self.strategy(fallback)

    def describe(self) -> str:
        wide = sum(1 for width in self.widths if width > 1)
        sizes = [spec.size() for spec in self.accepted]
        return (
            f"{max(self.found, len(self.accepted))} accepted of {self.tried} task parameter sets drawn from "
            f"the schema, the {len(self.accepted)} smallest kept ({wide} with several subtasks at once"
            + (f"; sizes {min(sizes):.1f}-{max(sizes):.1f})" if sizes else ")")
        )


def spec_strategy(params: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[TaskSpec]:
    return st.builds(TaskSpec, MAX_SUBTASKS, params.map(json.dumps))


def roomy_spec_strategy(params: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[TaskSpec]:
    """Specs with room for several subtasks at once (max_subtasks_count 4..8), for calibration."""
    return st.builds(TaskSpec, st.integers(4, 8), params.map(json.dumps))


def calibrate(
    wire: RequestorWire,
    fresh_id: Callable[[str], str],
    specs: st.SearchStrategy[TaskSpec],
    run_seed: int,
    probes: int = PROBES,
    keep: int = KEEP,
) -> Calibration:
    """Try up to `probes` drawn specs with CreateTask (each accepted task is aborted again) until 2 x `keep`
    are accepted; keep the smaller half (at most `keep`, at least 4) by `TaskSpec.size`, smallest first."""
    accepted: list[TaskSpec] = []
    widths: list[int] = []
    tried = 0

    @seed(run_seed)
    @settings(
        max_examples=probes,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(specs)
    def probe(spec: TaskSpec) -> None:
        nonlocal tried
        if len(accepted) >= 2 * keep or spec in accepted:
            return
        tried += 1
        task_id = fresh_id("calibration")
        if wire.create_task(task_id, spec.max_subtasks, spec.params_json).status is Status.OK:
            accepted.append(spec)
            widths.append(_width(wire, task_id, fresh_id))
            wire.abort_task(task_id)

    probe()
    kept = min(keep, max(4, math.ceil(len(accepted) / 2)))
    order = sorted(range(len(accepted)), key=lambda index: (accepted[index].size(), index))[:kept]
    return Calibration(
        tuple(accepted[i] for i in order), tried, tuple(widths[i] for i in order), found=len(accepted)
    )


def _width(wire: RequestorWire, task_id: str, fresh_id: Callable[[str], str]) -> int:
    """How many subtasks a new task hands out before it has to wait for results (at most WIDTH)."""
    width = 0
    while width < WIDTH:
        pending = wire.has_pending_subtasks(task_id)
        if pending.status is not Status.OK or not pending.value().has_pending_subtasks:
            break
        reply = wire.next_subtask(task_id, fresh_id("calibration-subtask"))
        if reply.status is not Status.OK or not reply.value().HasField("subtask"):
            break
        width += 1
    return width
