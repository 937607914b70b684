"""`taskapi conformance`: a black-box, Hypothesis-driven conformance suite for task-api apps.

It starts an app build's servers in the build's environment (`target`), talks to them only over task-api
gRPC (`wire`), drives them with random valid and invalid call sequences checked against the protocol
model (`model`, `requestor_machine`, `provider_machine`) and with whole tasks (`task_driver`,
`task_properties`, `lifecycle`, `determinism`), and reports every property of `properties` with a
minimal failing example (`runner`, `report`). `gate` lets a provider require a passing report.
docs/conformance.md describes it all.
"""

from runtime.conformance.properties import PROPERTIES, Property
from runtime.conformance.report import SUITE_VERSION, Report
from runtime.conformance.runner import run_suite
from runtime.conformance.session import SuiteConfig
from runtime.conformance.target import Target, command_target, target_of

__all__ = [
    "PROPERTIES",
    "SUITE_VERSION",
    "Property",
    "Report",
    "SuiteConfig",
    "Target",
    "command_target",
    "run_suite",
    "target_of",
]
