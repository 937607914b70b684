"""The first Ctrl-C (SIGINT) or SIGTERM ends a long-running command at once, leaving nothing behind.

`cancel_on_signal(work)` awaits the coroutine (`run_until_signalled` on a new event loop). The first of
those signals cancels it, so every `finally` and `async with` on the way out runs: app servers and wasm
workers are killed, containers stopped, servers closed, temporary dirs removed. It then raises
`Interrupted`, for the command to print one line and exit with the shell's code for the signal (130,
143): `exit_interrupted`. A second signal, while that clean-up still runs, exits at once; the app servers
and wasm workers die with this process all the same (PR_SET_PDEATHSIG, see `apps.sdk.parent`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """The work was cancelled by a signal; everything it started has been stopped."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """The shell's exit code for a process ended by this signal."""
        return 128 + self.signum


async def cancel_on_signal(work: Awaitable[T], before_cancel: Callable[[], None] | None = None) -> T:
    """Await `work`; the first SIGINT / SIGTERM cancels it and raises `Interrupted` once it has unwound.

    `before_cancel` is called first, to note what the work was doing when the signal came.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if received:
            os._exit(128 + signum)
        received.append(signum)
        if before_cancel is not None:
            before_cancel()
        task.cancel()

    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await task
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)


def exit_interrupted(exc: Interrupted, line: str) -> NoReturn:
    """Say `line` and end the process with the signal's exit code, now.

    Call it once everything the command started is stopped and removed: it skips the interpreter's
    finalisation (most of a second of CPU on a loaded machine, with wasmtime, grpclib and hypothesis
    loaded), which has nothing left to release.
    """
    click.echo(line, err=True)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exc.exit_code)


def run_until_signalled(work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(cancel_on_signal(work))`."""
    return asyncio.run(cancel_on_signal(work))
