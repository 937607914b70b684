"""What the requestor's dashboard shows, read from the node: plain JSON-ready dicts, one function a view."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from runtime.conformance.report import Report
from runtime.dashboard.preview import has_preview
from runtime.node.requestor import RequestorNode
from runtime.node.store import SubtaskRow, TaskRow, now_ms
from runtime.node.trust import sample_rate

PROGRESS: dict[str, tuple[str, ...]] = {
    "waiting": ("requested", "wanted"),
    "running": ("assigned",),
    "verifying": ("delivered",),
    "accepted": ("accepted",),
    "failed": ("rejected", "failed", "expired", "discarded"),
}
"""The dashboard's progress columns, as sets of the store's subtask states (aborted and abandoned
subtasks are in none: they are neither work done nor work lost to a provider)."""

THROUGHPUT_WINDOW_S = 300


def progress(counts: dict[str, int]) -> dict[str, int]:
    return {column: sum(counts.get(state, 0) for state in states) for column, states in PROGRESS.items()}


def _task_summary(node: RequestorNode, row: TaskRow) -> dict[str, Any]:
    bills = node.store.bills(row.task_id)
    return {
        "task_id": row.task_id,
        "app": row.app,
        "env": row.env_id,
        "state": row.state,
        "reason": row.reason,
        "progress": progress(node.store.count_by_state(row.task_id)),
        "created_ms": row.created_ms,
        "finished_ms": row.finished_ms,
        "fuel": sum(bill["fuel"] or 0 for bill in bills),
        "cpu_ns": sum(bill["cpu_ns"] or 0 for bill in bills),
        "preview": has_preview(row.app),
    }


def tasks(node: RequestorNode) -> dict[str, Any]:
    """Every task, newest first."""
    return {"tasks": [_task_summary(node, row) for row in reversed(node.store.tasks())]}


def attempts(subtasks: list[SubtaskRow]) -> dict[str, int]:
    """Each subtask's attempt number at its piece of work: subtasks with the same parameters (a part the
    app handed out again after a failure, or a replica) count as attempts at one piece."""
    seen: Counter[str] = Counter()
    numbers = {}
    for row in subtasks:
        seen[row.params_json] += 1
        numbers[row.subtask_id] = seen[row.params_json]
    return numbers


def task(node: RequestorNode, task_id: str) -> dict[str, Any] | None:
    """One task: its summary, the subtask grid, its bill and its outputs (None for an unknown task)."""
    row = node.store.task(task_id)
    if row is None:
        return None
    status = node.task_status(task_id)
    subtasks = [s for s in node.store.subtasks(task_id=task_id) if s.state != "requested"]
    numbers = attempts(subtasks)
    return {
        **_task_summary(node, row),
        "params": row.params,
        "subtasks": [
            {
                "subtask_id": s.subtask_id,
                "state": s.state,
                "provider": s.provider_id,
                "attempt": numbers[s.subtask_id],
                "replica_of": s.replica_of,
                "reason": s.reason,
                "fuel": s.fuel,
                "wall_ms": s.wall_ms,
                "updated_ms": s.updated_ms,
            }
            for s in subtasks
        ],
        "bills": [
            {"provider": b.provider_id, "subtasks": b.subtasks, "fuel": b.fuel, "cost": b.cost}
            for b in status.bills
        ],
        "outputs": list(status.outputs),
    }


def providers(node: RequestorNode) -> dict[str, Any]:
    """Every provider that joined: its offer, trust, results, drops, and its latest refused results."""
    trust = node.verification.trust
    policy = node.verification.config.policy
    by_state = node.store.states_by_provider()
    drops: dict[str, list[dict[str, str]]] = {}
    for provider_id, task_id, reason in trust.drops():
        drops.setdefault(provider_id, []).append({"task_id": task_id, "reason": reason})
    refused: dict[str, list[dict[str, str]]] = {}
    for s in node.store.subtasks(states=("rejected", "failed", "discarded")):
        refused.setdefault(s.provider_id, []).append(
            {"subtask_id": s.subtask_id, "task_id": s.task_id, "state": s.state, "reason": s.reason}
        )
    listed = []
    for provider in node.store.providers():
        record = trust.get(provider.provider_id)
        counts = by_state.get(provider.provider_id, {})
        listed.append(
            {
                "provider_id": provider.provider_id,
                "envs": provider.offer.get("envs", {}),
                "capacity": provider.offer.get("capacity", 0),
                "price": provider.offer.get("price", 0.0),
                "last_seen_ms": provider.last_seen_ms,
                "trust": record.score,
                "sample_rate": sample_rate(record, policy),
                "forged": record.forged,
                "blacklisted": record.blacklisted,
                "benchmark_inflated": record.benchmark_inflated,
                "results": progress(counts),
                "rejected": counts.get("rejected", 0),
                "dropped": drops.get(provider.provider_id, []),
                "refused": refused.get(provider.provider_id, [])[-10:],
            }
        )
    return {"providers": listed}


def throughput(node: RequestorNode) -> dict[str, Any]:
    """Subtasks accepted per second over the last THROUGHPUT_WINDOW_S seconds (quiet seconds as 0)."""
    now_s = now_ms() // 1000
    since_s = now_s - THROUGHPUT_WINDOW_S + 1
    per_second = dict(node.store.accepted_per_second(since_s * 1000))
    return {"since_s": since_s, "accepted": [per_second.get(s, 0) for s in range(since_s, now_s + 1)]}


def reports(folder: Path) -> dict[str, Any]:
    """The conformance reports (`taskapi conformance --report`) in `folder`, one row per file."""
    listed: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            report = Report.read(path)
        except ValueError as exc:
            listed.append({"file": path.name, "error": str(exc)})
            continue
        listed.append(
            {
                "file": path.name,
                "app": f"{report.app.name} {report.app.version}",
                "env": report.app.environment,
                "app_id": report.app.app_id[:12],
                "passed": report.passed,
                "seed": report.seed,
                "examples": report.examples,
                "seconds": round(report.seconds, 1),
                "started_at": report.started_at,
                "properties": [
                    {"name": p.name, "status": p.status, "checks": p.checks, "message": p.message or ""}
                    for p in report.properties
                ],
            }
        )
    return {"folder": str(folder), "reports": listed}


def apps(node: RequestorNode) -> dict[str, Any]:
    """The enabled app builds with their parameter schemas, for the submit form."""
    builds = [app for app in node.app_manager.inventory().apps if app.enabled]
    return {
        "apps": [
            {
                "name": app.name,
                "env": app.environment,
                "version": app.version,
                "description": app.descriptor.description,
                "parameters": {
                    name: json.loads(spec.model_dump_json())
                    for name, spec in app.descriptor.parameters.items()
                },
            }
            for app in builds
        ]
    }
