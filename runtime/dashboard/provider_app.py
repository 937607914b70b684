"""The provider's dashboard: what it computes now, its environments and limits, its earnings and verdicts."""

from __future__ import annotations

import json
import ssl
from typing import Any

from aiohttp import web

from runtime.dashboard.access import Access, is_loopback
from runtime.dashboard.server import DashboardServer, base_app, serve, stream
from runtime.node.market import FUEL_UNIT
from runtime.node.provider import ProviderNode
from runtime.node.store import now_ms


def snapshot(node: ProviderNode) -> dict[str, Any]:
    """The provider's state as JSON-ready data."""
    activity = node.activity
    benchmarks_file = node.config.data_dir / "benchmarks.json"
    benchmarks = json.loads(benchmarks_file.read_text()) if benchmarks_file.is_file() else {}
    whitelist = node.whitelist
    now = now_ms()
    return {
        "provider_id": node.provider_id,
        "requestor": node.address,
        "envs": [{"env": env_id, "benchmark": benchmarks.get(env_id)} for env_id in node.runners],
        "capacity": node.config.capacity,
        "price": node.config.price,
        "whitelist": {
            "wasm_modules": sorted(whitelist.wasm_modules),
            "local_apps": sorted(whitelist.local_apps),
            "docker_repositories": sorted(whitelist.docker_repositories),
        },
        "running": [
            {
                "subtask_id": r.subtask_id,
                "task_id": r.task_id,
                "app": r.app_name,
                "env": r.env_id,
                "running_ms": now - r.started_ms,
            }
            for r in activity.running.values()
        ],
        "accepted": activity.accepted,
        "rejected": activity.rejected,
        "failed": activity.failed,
        "fuel_earned": activity.fuel_earned,
        "cpu_ns_earned": activity.cpu_ns_earned,
        "wasm_earnings": activity.fuel_earned / FUEL_UNIT * node.config.price,
        "setbacks": [
            {"subtask_id": subtask_id, "verdict": verdict, "reason": reason}
            for subtask_id, verdict, reason in activity.setbacks
        ],
    }


async def start_provider_dashboard(
    node: ProviderNode, host: str, port: int, token: str, *, tls: ssl.SSLContext | None = None
) -> DashboardServer:
    """Serve the provider's dashboard on host:port (0: a free port), logged in with `token`."""
    access = Access(token, loopback_only=is_loopback(host), secure_cookie=tls is not None)
    app = base_app(access, "provider.html", max_upload_bytes=1024 * 1024)

    async def events(request: web.Request) -> web.StreamResponse:
        return await stream(request, lambda: snapshot(node))

    app.router.add_get("/api/stream", events)
    return await serve(app, host, port, tls)
