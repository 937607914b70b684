"""Retrying a remote call: exponential backoff with jitter, and which failures are worth retrying.

A node that talks to another one must outlive that peer's bugs and restarts: a failed call is logged and
tried again after a delay that doubles with each consecutive failure (up to `max_s`), with jitter so many
clients refused at once do not return at once (`Backoff`, apps/sdk/backoff.py). Only failures that no
retry can mend end the caller: an authentication refusal, or a peer whose TLS certificate does not verify
(`fatal_reason`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from apps.sdk.backoff import Backoff as Backoff  # the delay policy, shared with the environments

AUTH_REFUSALS = frozenset({Status.UNAUTHENTICATED, Status.PERMISSION_DENIED})


def describe_failure(error: BaseException) -> str:
    """One line naming a failed call's error: its gRPC status and message, or its exception type."""
    if isinstance(error, GRPCError):
        return f"{error.status.name}: {error.message}"
    return f"{type(error).__name__}: {error}"


def fatal_reason(error: BaseException) -> str | None:
    """Why `error` ends the caller instead of being retried, or None if it is worth retrying."""
    if isinstance(error, GRPCError) and error.status in AUTH_REFUSALS:
        return describe_failure(error)
    certificate_error = error if isinstance(error, ssl.SSLCertVerificationError) else None
    if certificate_error is None and isinstance(error.__cause__, ssl.SSLCertVerificationError):
        certificate_error = error.__cause__
    if certificate_error is not None:
        return f"TLS certificate check failed: {certificate_error.verify_message or certificate_error}"
    return None


async def sleep_unless_stopped(delay: float, stop: asyncio.Event) -> None:
    """Sleep `delay` seconds, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
