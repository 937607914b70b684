"""Serving a dashboard: login routes, static pages, server-sent events, and the listening socket."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from runtime.dashboard.access import Access, is_loopback

log = logging.getLogger(__name__)

STATIC = Path(str(resources.files("runtime.dashboard") / "static"))
SSE_INTERVAL_S = 0.5
"""How often a stream looks for changes at most: bounds both the dashboard's cost and its lag."""
SSE_SHARE = 0.02
"""The most of the event loop's time one stream may take: a view that takes longer to build than
SSE_SHARE x SSE_INTERVAL_S (a task of thousands of subtasks) is rebuilt less often."""
KEEPALIVE_S = 15.0

Snapshot = Callable[[], Any]


def page(name: str) -> Callable[[web.Request], Any]:
    """A handler answering with the static HTML page `name`."""

    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})

    return handler


async def stream(request: web.Request, snapshot: Snapshot) -> web.StreamResponse:
    """Server-sent events: `snapshot()` as JSON whenever it changed, checked every SSE_INTERVAL_S (or
    less often, so that building it takes at most SSE_SHARE of the loop's time)."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    last, quiet = "", 0.0
    try:
        while True:
            began = time.perf_counter()
            text = json.dumps(snapshot(), separators=(",", ":"))
            interval = max(SSE_INTERVAL_S, (time.perf_counter() - began) / SSE_SHARE)
            if text != last:
                await response.write(f"data: {text}\n\n".encode())
                last, quiet = text, 0.0
            elif quiet >= KEEPALIVE_S:
                await response.write(b": keepalive\n\n")
                quiet = 0.0
            await asyncio.sleep(interval)
            quiet += interval
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


def redirect(location: str) -> web.Response:
    """See other: the answer to a form's POST."""
    return web.Response(status=303, headers={"Location": location})


def base_app(access: Access, index: str, max_upload_bytes: int) -> web.Application:
    """An app with access control, the login and logout routes, the session's CSRF token and static files."""
    app = web.Application(middlewares=[access.middleware], client_max_size=max_upload_bytes)

    async def login_form(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-store"})

    async def login(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        response = redirect("/")
        if not access.login(str(form.get("token", "")), response):
            return redirect("/login?failed=1")
        return response

    async def logout(request: web.Request) -> web.StreamResponse:
        response = redirect("/login")
        access.logout(request, response)
        return response

    async def session(request: web.Request) -> web.Response:
        current = access.session(request)
        assert current is not None  # the middleware let only sessions through
        return web.json_response({"csrf": current.csrf})

    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app.router.add_get("/login", login_form)
    app.router.add_get("/favicon.ico", no_icon)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/api/session", session)
    app.router.add_get("/", page(index))
    app.router.add_static("/static/", STATIC)
    return app


@dataclass
class DashboardServer:
    runner: web.AppRunner
    url: str

    async def close(self) -> None:
        await self.runner.cleanup()


def tls_context(cert: str, key: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def serve(app: web.Application, host: str, port: int, tls: ssl.SSLContext | None) -> DashboardServer:
    """Listen on host:port (0: a free port); the URL names the port actually bound."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    bound = int(runner.addresses[0][1])
    scheme = "https" if tls else "http"
    shown = f"[{host}]" if ":" in host else host
    if not is_loopback(host) and tls is None:
        log.warning(
            "dashboard on %s:%d is served WITHOUT TLS: the token and the session cookie cross the network"
            " in clear",
            host,
            bound,
        )
    return DashboardServer(runner, f"{scheme}://{shown}:{bound}/")
