"""`provider join --require-conformance REPORT.json...`: run only apps with a passing conformance report.

A report admits exactly the build it tested: the assignment's app id must be the report's, and what the
provider will run must have the report's digest (a wasm module's sha256, from the assignment; a docker
image's id, pinned by the assignment or looked up locally; a local app's package files, hashed here).
Reports are checked when the provider starts: a failed, partial or unreadable report is an error there,
not a silent refusal later. The gate narrows the whitelist; it never widens it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import assert_never

from environments.base import PayloadKind
from environments.registry import UnknownEnvironment, payload_kind
from protos import node_pb2 as npb
from runtime.appmanager import AppManager, AppNotAvailable, LocalDescriptor
from runtime.conformance.properties import PROPERTIES
from runtime.conformance.report import SUITE_VERSION, Report
from runtime.conformance.target import image_id, package_digest
from runtime.node.provider import Refused, Whitelist

SUITE_MAJOR = SUITE_VERSION.split(".")[0]


def check_report(report: Report, path: Path) -> None:
    """ValueError unless `report` is a complete, passing report of this suite's major version."""
    if report.suite_version.split(".")[0] != SUITE_MAJOR:
        raise ValueError(f"{path}: suite version {report.suite_version}, this node needs {SUITE_MAJOR}.x")
    statuses = {prop.name: prop.status for prop in report.properties}
    missing = [prop.name for prop in PROPERTIES if prop.name not in statuses]
    if missing:
        raise ValueError(f"{path}: a partial report (no {', '.join(missing)}); run the whole suite")
    failing = sorted(name for name, status in statuses.items() if status not in ("passed", "not_applicable"))
    if failing or not report.passed:
        raise ValueError(f"{path}: {report.app.name} did not pass ({', '.join(failing) or 'failed'})")


def load_reports(paths: Iterable[Path]) -> list[Report]:
    """The reports at `paths`, each checked (ValueError names the file and what is wrong)."""
    reports = []
    for path in paths:
        report = Report.read(path)
        check_report(report, path)
        reports.append(report)
    return reports


def _local_digest(app_name: str) -> str | None:
    """The package digest of this machine's one enabled Python-package build of `app_name` (None when it
    has none, or several)."""
    try:
        builds = AppManager().find(app_name)
    except AppNotAvailable:
        return None
    packages = [
        app.descriptor for app in builds if app.enabled and isinstance(app.descriptor, LocalDescriptor)
    ]
    if len(packages) != 1:
        return None
    return package_digest(packages[0].prerequisites.module)


def _docker_digest(assignment: npb.Assignment) -> str | None:
    """The image id the assignment pins, else the local id of its image:tag (None when unknown)."""
    try:
        prerequisites = json.loads(assignment.prerequisites_json or "{}")
        if prerequisites.get("digest"):
            return str(prerequisites["digest"])
        return image_id(f"{prerequisites['image']}:{prerequisites.get('tag', 'latest')}")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass
class ConformanceGate:
    """Passing reports by app id; `refusal` says why an assignment has none for what it would run."""

    reports: list[Report]
    local_digest: Callable[[str], str | None] = _local_digest
    docker_digest: Callable[[npb.Assignment], str | None] = _docker_digest
    _digests: dict[str, str | None] = field(default_factory=dict)

    def digest_of(self, assignment: npb.Assignment) -> str | None:
        """What the provider would run, as a report's digest (told by what its environment's builds are)."""
        try:
            kind = payload_kind(assignment.env_id)
        except UnknownEnvironment:
            return None
        match kind:
            case PayloadKind.WASM_MODULE:
                module_sha256 = assignment.app_module.sha256
                return f"sha256:{module_sha256}" if module_sha256 else None
            case PayloadKind.PYTHON_PACKAGE:
                return self._looked_up(assignment, lambda: self.local_digest(assignment.app_name))
            case PayloadKind.CONTAINER_IMAGE:
                return self._looked_up(assignment, lambda: self.docker_digest(assignment))
            case _:
                assert_never(kind)

    def _looked_up(self, assignment: npb.Assignment, look_up: Callable[[], str | None]) -> str | None:
        """A digest this machine looks up (a package's files, an image's id), once per environment, app
        and prerequisites."""
        key = f"{assignment.env_id}/{assignment.app_name}/{assignment.prerequisites_json}"
        if key not in self._digests:
            self._digests[key] = look_up()
        return self._digests[key]

    def refusal(self, assignment: npb.Assignment) -> str | None:
        """None when a passing report covers the assignment's app id and digest; else the reason."""
        name = f"{assignment.app_name or 'app'} ({assignment.env_id}, id {assignment.app_id[:12]})"
        matching = [report for report in self.reports if report.app.app_id == assignment.app_id]
        if not matching:
            return f"{name} has no passing conformance report (--require-conformance)"
        digest = self.digest_of(assignment)
        if not any(report.app.digest == digest for report in matching):
            tested = ", ".join(sorted({report.app.digest[:19] for report in matching}))
            return (
                f"{name} would run {digest[:19] if digest else 'an unknown build'}, but its passing "
                f"conformance reports are of {tested} (--require-conformance)"
            )
        return None


@dataclass
class ConformanceWhitelist(Whitelist):
    """The provider's whitelist, narrowed to apps with a passing conformance report."""

    gate: ConformanceGate = field(default_factory=lambda: ConformanceGate([]))

    def check(self, assignment: npb.Assignment) -> None:
        super().check(assignment)
        reason = self.gate.refusal(assignment)
        if reason is not None:
            raise Refused(reason)


def require_conformance(whitelist: Whitelist, paths: Iterable[Path]) -> ConformanceWhitelist:
    """`whitelist` narrowed by the reports at `paths` (ValueError names a report that cannot be used)."""
    gate = ConformanceGate(load_reports(paths))
    copied = {item.name: getattr(whitelist, item.name) for item in dataclasses.fields(whitelist)}
    return ConformanceWhitelist(**copied, gate=gate)
