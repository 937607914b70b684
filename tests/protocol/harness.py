"""The protocol tests' harness: the wire access of `runtime.conformance.wire`, plus their Hypothesis settings.

The reusable parts (real app server processes over real gRPC, synchronous calls for state machines) moved
to `runtime.conformance.wire`, which `taskapi conformance` shares; they are re-exported here.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

from runtime.conformance.wire import (
    EXIT_GUARD_S,
    HANG_GUARD_S,
    SUBTASK_INPUTS,
    SUBTASK_OUTPUTS,
    TASK_INPUTS,
    TASK_OUTPUTS,
    AppServer,
    Hang,
    Loop,
    ProtocolMismatch,
    ProviderWire,
    Reply,
    RequestorWire,
    copy_resources,
    deliver,
    expect,
    output_file,
    stop,
)
from runtime.serving import Role

__all__ = [
    "EXIT_GUARD_S",
    "HANG_GUARD_S",
    "SUBTASK_INPUTS",
    "SUBTASK_OUTPUTS",
    "TASK_INPUTS",
    "TASK_OUTPUTS",
    "AppServer",
    "Hang",
    "Loop",
    "ProtocolMismatch",
    "ProviderWire",
    "Reply",
    "RequestorWire",
    "Role",
    "copy_resources",
    "deliver",
    "expect",
    "machine_settings",
    "output_file",
    "stop",
]


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
