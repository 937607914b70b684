"""Runs an app server as a local child process on a free loopback port (no fixed ports)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from pathlib import Path

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.client import wait_until_serving
from apps.sdk.parent import PARENT_PID_ENV

HOST = "127.0.0.1"


def python_app_command(app_module: str) -> list[str]:
    """The command that serves a Python app package: `python -m <module>`."""
    return [sys.executable, "-m", app_module]


def free_port(host: str = HOST) -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class AppProcess:
    """One app server process (`<command> requestor|provider PORT`) serving `work_dir`.

    The server dies with this process, even with one killed by SIGKILL (Linux; see `apps.sdk.parent`): it is
    told this process's pid and asks the kernel to kill it when its parent goes. The kernel watches the thread
    that started it, so start app servers from a thread that lives as long as they should (the event loop's).
    """

    def __init__(self, command: list[str], role: str, work_dir: Path, *, persistent: bool = True) -> None:
        self.command = command
        self.role = role
        self.work_dir = work_dir
        self.persistent = persistent
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._log_path = work_dir / f".{role}-app.log"

    @property
    def pid(self) -> int | None:
        """The server's process id, once started."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, timeout: float = 20.0) -> Channel:
        """Start the server and return a channel once it answers health checks."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = [*self.command, self.role, str(self.port), "--host", HOST]
        if self.persistent and self.role == "provider":
            args.append("--persistent")
        with open(self._log_path, "ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *args,
                cwd=self.work_dir,
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1", PARENT_PID_ENV: str(os.getpid())},
            )
        healthy = asyncio.ensure_future(wait_until_serving(HOST, self.port, timeout))
        exited = asyncio.ensure_future(self._process.wait())
        await asyncio.wait({healthy, exited}, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if healthy.done() and not healthy.cancelled() and healthy.exception() is None:
            return healthy.result()
        healthy.cancel()
        await self.kill()
        reason = f"exited with code {self._process.returncode}" if exited.done() else str(healthy.exception())
        raise GRPCError(Status.UNAVAILABLE, f"app {self.role} server {reason}; app log: {self.log_tail()}")

    def log_tail(self, limit: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self._log_path.read_text(errors="replace")[-limit:]
        return ""

    async def wait(self, timeout: float) -> int | None:
        """Wait for the process to exit; kill it if it takes longer than `timeout`. Returns its exit code."""
        if self._process is None:
            return None
        try:
            return await asyncio.wait_for(self._process.wait(), timeout)
        except TimeoutError:
            await self.kill()
            return self._process.returncode

    async def kill(self) -> None:
        if self.running:
            assert self._process is not None
            self._process.kill()
            await self._process.wait()
