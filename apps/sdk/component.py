"""Guest-side helpers for Python apps built as task-api components (protos/taskapi.wit, componentize-py).

Imported only inside a component build: `wit_world` and `componentize_py_types` are the binding modules
componentize-py generates for the `app` world (scripts/build_components). An app's `Requestor` /
`Provider` classes call their plain handler functions inside `refusals()`, which turns the SDK's errors
into the WIT `error` case of the same gRPC status, exactly as the SDK's gRPC server does.

The component sees the task's folders as preopens (docs/wasm-apps.md): `/task` on the requestor side
(a `RequestorTaskDir`), `/inputs` and `/output` for `compute`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from componentize_py_types import Err  # type: ignore[import-not-found]
from wit_world.imports import types  # type: ignore[import-not-found]

from apps.sdk.errors import AppError, InvalidArgument
from apps.sdk.handlers import JsonDict
from apps.sdk.workdir import RequestorTaskDir

REQUESTOR_TASK_DIR = RequestorTaskDir(Path("/task"))
PROVIDER_INPUTS = Path("/inputs")
PROVIDER_OUTPUT = Path("/output")


def error_case(status_name: str, message: str) -> Any:
    """The WIT `error` value for a gRPC status name (INVALID_ARGUMENT -> error::invalid-argument)."""
    case = "".join(part.capitalize() for part in status_name.split("_"))
    return getattr(types, f"Error_{case}")(message)


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """Raise the WIT `error` for an `AppError` (its status) or any other exception (INTERNAL)."""
    try:
        yield
    except AppError as exc:
        raise Err(error_case(exc.status.name, exc.message)) from exc
    except Exception as exc:
        raise Err(error_case("INTERNAL", f"app error: {type(exc).__name__}: {exc}")) from exc


def params_of(text: str, what: str) -> JsonDict:
    """A JSON object from a `*-params-json` field, or `InvalidArgument` naming `what`."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
