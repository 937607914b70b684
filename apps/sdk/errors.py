"""Errors an app handler raises to refuse a call; each maps to one gRPC status."""

from __future__ import annotations

from grpclib.const import Status


class AppError(Exception):
    """Base class: a call the app refuses, with a message meant for the caller."""

    status: Status = Status.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(AppError):
    """Malformed request: bad JSON, bad parameter, bad id."""

    status = Status.INVALID_ARGUMENT


class NotFound(AppError):
    """Unknown task or subtask."""

    status = Status.NOT_FOUND


class AlreadyExists(AppError):
    """A task or subtask id that is already in use."""

    status = Status.ALREADY_EXISTS


class FailedPrecondition(AppError):
    """A valid request in the wrong state (verify before compute, call on an aborted task, ...)."""

    status = Status.FAILED_PRECONDITION


class Unavailable(AppError):
    """The app is shutting down and takes no new calls."""

    status = Status.UNAVAILABLE
