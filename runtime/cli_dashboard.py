"""`--dashboard HOST:PORT` of `taskapi requestor serve`, `taskapi run` and `taskapi provider join`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from runtime.appmanager.manager import default_data_dir
from runtime.dashboard.provider_app import start_provider_dashboard
from runtime.dashboard.requestor_app import start_requestor_dashboard
from runtime.dashboard.server import DashboardServer, tls_context
from runtime.node.embedded import Attach
from runtime.node.provider import ProviderNode
from runtime.node.requestor import RequestorNode

T = TypeVar("T")

REPORTS_FOLDER = "conformance-reports"
"""Where in a data dir the requestor's dashboard looks for `taskapi conformance --report` files."""

dashboard_option = click.option(
    "--dashboard",
    metavar="HOST:PORT",
    help="Serve the web dashboard on HOST:PORT (HOST defaults to 127.0.0.1; a non-loopback HOST serves "
    "other machines, over TLS when --tls-cert is given). Log in with the control token.",
)


def dashboard_address(value: str) -> tuple[str, int]:
    """HOST:PORT or :PORT or PORT (loopback); BadParameter names the problem."""
    host, _, port = value.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--dashboard")
    return host.strip("[]") or "127.0.0.1", int(port)


def _announce(server: DashboardServer, token_file: Path) -> None:
    click.echo(f"dashboard at {server.url} (log in with the token in {token_file})", err=True)


@contextlib.asynccontextmanager
async def requestor_dashboard(
    node: RequestorNode,
    address: str,
    token: str,
    token_file: Path,
    *,
    reports_dir: Path,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> AsyncIterator[DashboardServer]:
    """The requestor's dashboard while the block runs."""
    host, port = dashboard_address(address)
    tls = tls_context(tls_cert, tls_key) if tls_cert else None
    server = await start_requestor_dashboard(node, host, port, token, reports_dir=reports_dir, tls=tls)
    _announce(server, token_file)
    try:
        yield server
    finally:
        await server.close()


async def with_provider_dashboard(
    node: ProviderNode, address: str, token: str, token_file: Path, work: Callable[[], Awaitable[T]]
) -> T:
    """Run `work()` with the provider's dashboard served meanwhile."""
    host, port = dashboard_address(address)
    server = await start_provider_dashboard(node, host, port, token)
    _announce(server, token_file)
    try:
        return await work()
    finally:
        await server.close()


def provider_run(
    node: ProviderNode, dashboard: str | None, token: str, token_file: Path
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The provider's `run`, with its dashboard served meanwhile when asked for."""
    if dashboard is None:
        return node.run
    return lambda stop: with_provider_dashboard(node, dashboard, token, token_file, lambda: node.run(stop))


def run_dashboard(address: str, root: Path) -> Attach:
    """`taskapi run --dashboard`: the embedded requestor's dashboard, its token stored in `root`."""
    dashboard_address(address)  # refuse a malformed address before the task starts
    token_file = root / "control-token"

    def attach(node: RequestorNode, token: str) -> contextlib.AbstractAsyncContextManager[object]:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        reports_dir = default_data_dir() / REPORTS_FOLDER
        return requestor_dashboard(node, address, token, token_file, reports_dir=reports_dir)

    return attach
