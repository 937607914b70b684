"""The node's domain errors: what a requestor refuses, and why, without a word of gRPC.

The node raises these; only its service edges (`requestor_service.py`) turn them into gRPC statuses, so the
same refusal reads the same through the CLI, the dashboard, the embedded node and the wire. Each class is
one kind of refusal; the message names what was wrong.
"""

from __future__ import annotations


class NodeError(Exception):
    """A request the node refuses; `message` says what was wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(NodeError):
    """It names a task, subtask, app or resource the node does not have."""


class BadRequest(NodeError):
    """Its content is malformed or out of bounds (parameters, an input file, a result's name)."""


class TooLarge(BadRequest):
    """It is over a size limit."""


class WrongState(NodeError):
    """It cannot be done as things stand: the provider has not joined, the subtask is not assigned to it
    any more, the task is not active, the resource asked for is not a regular file."""


class Duplicate(NodeError):
    """It repeats one already under way (a second upload of the same result)."""


class AppUnavailable(NodeError):
    """The task's app cannot be served (its environment cannot start its server)."""


class AppRefused(NodeError):
    """The task's app refused it (its CreateTask answered an error); `app_status` is the app's own gRPC
    status name, kept so the caller hears what the app said."""

    def __init__(self, message: str, app_status: str) -> None:
        super().__init__(message)
        self.app_status = app_status


REFUSED_PREFIX = "refused: "
"""How a provider's ReportFailure says it refused the assignment (its whitelist, an environment it does
not run), as opposed to failing it: the requestor then gives it no more of the task."""


def is_refusal(reason: str) -> bool:
    """Whether a ReportFailure reason is a refusal (REFUSED_PREFIX)."""
    return reason.startswith(REFUSED_PREFIX.rstrip())
