"""The requestor side of every app in use: one long-lived app server per app build (Golem's model)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from grpclib.exceptions import GRPCError

from apps.sdk.client import RequestorAppClient
from environments.app_serving import AppLauncher, AppServer, AppServing
from runtime.appmanager import AppManager, Descriptor
from runtime.node.errors import AppUnavailable
from runtime.serving import serving_of


@dataclass(frozen=True)
class ResolvedApp:
    """An app build the node can serve: how to start its server, and what providers need to run it."""

    name: str
    app_id: str
    env_id: str
    serving: AppServing
    module: Path | None
    descriptor: Descriptor

    @property
    def key(self) -> str:
        return f"{self.name}-{self.env_id}"


def resolve_app(manager: AppManager, name: str, env: str | None) -> ResolvedApp:
    """The enabled build of an app by name (or id) and environment; AppNotAvailable names what exists."""
    app = manager.resolve(name, env)
    return ResolvedApp(app.name, app.app_id, app.environment, serving_of(app), app.module, app.descriptor)


class AppServers:
    """Starts requestor app servers on demand under `<work_root>/<app>-<env>` and restarts dead ones.

    A build's serving (its environment's `app_serving`) is opened once and closed with the rest.
    """

    def __init__(self, work_root: Path) -> None:
        self.work_root = work_root
        self._servers: dict[str, tuple[AppServer, RequestorAppClient]] = {}
        self._launchers: dict[str, tuple[AppServing, AppLauncher]] = {}
        self._lock = asyncio.Lock()

    def work_dir(self, app: ResolvedApp) -> Path:
        return self.work_root / app.key

    async def client(self, app: ResolvedApp) -> RequestorAppClient:
        async with self._lock:
            entry = self._servers.get(app.key)
            if entry is not None and entry[0].running:
                return entry[1]
            process = (await self._launcher(app))("requestor", self.work_dir(app), True)
            client = RequestorAppClient(await process.start())
            self._servers[app.key] = (process, client)
            return client

    async def hand_over(self, app: ResolvedApp, folder: Path) -> None:
        """Make a folder the node prepared in an app's work dir (a task's dir, its inputs) the app's own
        (its environment's servers may run as another user, which must be able to write there)."""
        app.serving.hand_over(folder)

    async def _launcher(self, app: ResolvedApp) -> AppLauncher:
        if app.key not in self._launchers:
            try:
                launcher = await app.serving.open()
            except Exception as exc:  # an environment that cannot serve: the caller reports it as the app's
                raise AppUnavailable(f"{app.env_id} cannot serve {app.name}: {exc}") from exc
            self._launchers[app.key] = (app.serving, launcher)
        return self._launchers[app.key][1]

    async def close(self) -> None:
        """Shut every app server down gracefully (killed if it does not stop in time)."""
        for process, client in self._servers.values():
            with contextlib.suppress(GRPCError):
                await client.shutdown()
            client.close()
            await process.wait(timeout=10)
        self._servers.clear()
        for serving, _ in self._launchers.values():
            await serving.close()
        self._launchers.clear()
