"""The protocol tests' harness: the conformance suite's session of an app, plus their Hypothesis settings.

The machines, the protocol model and the wire access live in `runtime.conformance`, which
`taskapi conformance` shares; the tests subclass its state machines and add their own checks.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from runtime.conformance.properties import Checks
from runtime.conformance.session import Session, SuiteConfig
from runtime.conformance.wire import Loop

from .apps_under_test import AppUnderTest

BENCHMARK = "benchmark_positive_and_bounded"


def machine_settings(**overrides: Any) -> settings:
    """Settings of every protocol state machine; TASKAPI_HYPOTHESIS_EXAMPLES overrides the example count."""
    values: dict[str, Any] = {
        "max_examples": int(os.environ.get("TASKAPI_HYPOTHESIS_EXAMPLES", "200")),
        "deadline": None,
        "stateful_step_count": 25,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
    }
    values.update(overrides)
    return settings(**values)


def protocol_session(app: AppUnderTest, loop: Loop, root: Path) -> Session:
    """A conformance session of the app's build whose valid task parameters are the app's `task_params`.

    The session is not calibrated: every task spec the machines draw holds parameters the app must accept.
    """
    session = Session(app.target(), SuiteConfig(), loop, root)
    session.params = app.task_params
    return session


def check_score(checks: Checks, what: str, score: float) -> None:
    """A RunBenchmark score must be a finite number above zero."""
    checks.check(BENCHMARK, math.isfinite(score) and score > 0, f"{what}: score {score} is not positive")
