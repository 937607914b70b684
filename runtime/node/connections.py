"""Connection limits of the requestor's server: how many, from whom, for how long, and how slow.

A hostile peer needs no token to open TCP connections: 1100 idle ones used up a requestor's 1024 file
descriptors. `ConnectionGuard` admits at most `max_connections` connections (and `max_per_peer` from
one address), closes a connection that has made no authenticated call `preauth_s` after it opened,
and one with no call in progress and no bytes received for `idle_s`. Streams that stop moving data
(`stall_s`) are cut off by the service itself with `within_stall_limit`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from asyncio import BaseTransport, Transport
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.wire_limits import BoundedProtocol

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ConnectionLimits:
    """The requestor server's bounds on connections (defaults documented in docs/node.md)."""

    max_connections: int = 512
    max_per_peer: int = 64
    preauth_s: float = 10.0
    idle_s: float = 300.0
    stall_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_per_peer", "preauth_s", "idle_s", "stall_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"connection limit {name} must be positive, got {getattr(self, name)}")


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


async def within_stall_limit(step: Awaitable[T], stall_s: float, what: str) -> T:
    """Await one step of a stream; DEADLINE_EXCEEDED naming `what` if it makes no progress in `stall_s`."""
    try:
        return await asyncio.wait_for(step, stall_s)
    except TimeoutError:
        raise GRPCError(
            Status.DEADLINE_EXCEEDED, f"{what} made no progress for {stall_s:g} s; cancelled"
        ) from None


class GuardedProtocol(BoundedProtocol):
    """A server connection that asks its guard to be admitted and tells it when data arrives."""

    def __init__(self, protocol: BoundedProtocol, guard: ConnectionGuard) -> None:
        super().__init__(protocol, protocol.max_message, protocol.method_limits)
        self.guard = guard
        self.opened = self.last_received = time.monotonic()
        self.authenticated = False
        self.admitted = False
        self.transport: Transport | None = None
        self.address: tuple[str, int] | None = None

    @property
    def peer_host(self) -> str:
        return self.address[0] if self.address else ""

    def connection_made(self, transport: BaseTransport) -> None:
        assert isinstance(transport, Transport)  # a TCP (or TLS) stream, as asyncio's servers make
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.address = (str(peer[0]), int(peer[1])) if peer else None
        self.admitted = self.guard.admit(self)
        if not self.admitted:
            transport.abort()
            return
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.last_received = time.monotonic()
            super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.admitted:
            self.guard.release(self)
            super().connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            super().pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            super().resume_writing()

    def calls_in_progress(self) -> int:
        return len(self.processor.streams)

    def close(self, why: str) -> None:
        log.info("closing connection from %s: %s", self.peer_host, why)
        assert self.transport is not None
        self.transport.abort()


class ConnectionGuard:
    """Admits, watches and closes the requestor server's connections (see the module's docstring)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: set[GuardedProtocol] = set()
        self._per_peer: Counter[str] = Counter()
        self._by_address: dict[tuple[str, int], GuardedProtocol] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def admit(self, protocol: GuardedProtocol) -> bool:
        if len(self._open) >= self.limits.max_connections:
            log.warning(
                "refused a connection from %s: %d connections open", protocol.peer_host, len(self._open)
            )
            return False
        if self._per_peer[protocol.peer_host] >= self.limits.max_per_peer:
            log.warning(
                "refused a connection from %s: %d open from that address",
                protocol.peer_host,
                self._per_peer[protocol.peer_host],
            )
            return False
        self._open.add(protocol)
        self._per_peer[protocol.peer_host] += 1
        if protocol.address is not None:
            self._by_address[protocol.address] = protocol
        return True

    def release(self, protocol: GuardedProtocol) -> None:
        if protocol in self._open:
            self._open.discard(protocol)
            self._per_peer[protocol.peer_host] -= 1
            if self._per_peer[protocol.peer_host] <= 0:
                del self._per_peer[protocol.peer_host]
            if protocol.address is not None:
                self._by_address.pop(protocol.address, None)

    def authenticated(self, address: tuple[str, int] | None) -> None:
        """The connection from `address` made a call that passed authentication."""
        if address is None:
            return
        protocol = self._by_address.get((str(address[0]), int(address[1])))
        if protocol is not None:
            protocol.authenticated = True

    def sweep(self) -> None:
        """Close connections past the pre-auth limit, and idle ones past the idle limit."""
        now = time.monotonic()
        for protocol in list(self._open):
            if not protocol.authenticated and now - protocol.opened > self.limits.preauth_s:
                protocol.close(f"no authenticated call within {self.limits.preauth_s:g} s")
            elif protocol.calls_in_progress() == 0 and now - protocol.last_received > self.limits.idle_s:
                protocol.close(f"idle for {self.limits.idle_s:g} s")

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def _sweep_forever(self) -> None:
        period = min(1.0, self.limits.preauth_s / 4, self.limits.idle_s / 4)
        while True:
            await asyncio.sleep(period)
            self.sweep()
