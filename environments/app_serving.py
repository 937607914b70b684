"""How an environment serves an app build's task-api servers (Golem's design: an app server is a runtime of
the build's environment plus a port).

The node hands an environment an `AppPayload` (the build's descriptor prerequisites and folder) through
`Environment.app_serving`, and gets an `AppServing`: `open()` readies what serving needs and returns an
`AppLauncher`, which makes the `AppServer` of one role on one work dir; `close()` releases it. Every app
server has one lifecycle whatever runs it (a child process, a container): `start()` runs it and returns a
channel to its address once it answers health checks (or raises UNAVAILABLE with its log), `running` says
whether it still runs, `wait(timeout)` waits for its exit (killing it after `timeout`) and gives its exit
code, `kill()` ends it now, `log_tail()` shows its last output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from grpclib.client import Channel

from apps.sdk.process import AppProcess

AppRole = Literal["requestor", "provider"]


@dataclass(frozen=True)
class AppPayload:
    """An app build to serve: `prerequisites` are its descriptor's, as JSON data (each environment validates
    them as its own); relative paths in them resolve against `folder`, the descriptor's folder."""

    prerequisites: Mapping[str, Any]
    folder: Path


class AppServer(Protocol):
    """One app server (a process or a container) serving one work dir in one role."""

    @property
    def running(self) -> bool: ...

    async def start(self) -> Channel: ...

    async def wait(self, timeout: float) -> int | None: ...

    async def kill(self) -> None: ...

    def log_tail(self, limit: int = 2000) -> str: ...


AppLauncher = Callable[[AppRole, Path, bool], AppServer]
"""Makes the server of one role on one work dir (`persistent`: a provider that serves until Shutdown)."""


class AppServing(Protocol):
    """What serving one app build needs, from `open()` to `close()`."""

    async def open(self) -> AppLauncher: ...

    async def close(self) -> None: ...

    def hand_over(self, folder: Path) -> None:
        """Make a folder the node prepared in an app server's work dir (a task's dir, its inputs) writable
        by the app server."""


def command_launcher(command: Sequence[str]) -> AppLauncher:
    """Servers run as child processes: `<command> requestor|provider PORT [--persistent]`."""
    fixed = list(command)

    def launch(role: AppRole, work_dir: Path, persistent: bool) -> AppServer:
        return AppProcess(fixed, role, work_dir, persistent=persistent)

    return launch


class CommandServing:
    """A build served by a command as child processes of the node; nothing to ready or release."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)

    async def open(self) -> AppLauncher:
        return command_launcher(self.command)

    async def close(self) -> None:
        return None

    def hand_over(self, folder: Path) -> None:
        """Nothing to do: the servers run as the node's user."""
