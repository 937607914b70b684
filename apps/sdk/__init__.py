"""The task-api SDK for app authors: handler interfaces, the server entrypoint, clients and helpers."""

from apps.sdk.errors import (
    AlreadyExists,
    AppError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from apps.sdk.handlers import (
    CreatedTask,
    JsonDict,
    ProviderAppHandler,
    RequestorAppHandler,
    Subtask,
    VerifyResult,
)
from apps.sdk.workdir import ProviderTaskDir, RequestorTaskDir

__all__ = [
    "AlreadyExists",
    "AppError",
    "CreatedTask",
    "FailedPrecondition",
    "InvalidArgument",
    "JsonDict",
    "NotFound",
    "ProviderAppHandler",
    "ProviderTaskDir",
    "RequestorAppHandler",
    "RequestorTaskDir",
    "Subtask",
    "Unavailable",
    "VerifyResult",
]
