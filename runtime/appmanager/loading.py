"""Reading a descriptor file: JSON, the model, the wasm module it names; errors name the field."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from environments.base import PayloadKind
from runtime.appmanager.descriptor import Descriptor, WasmDescriptor, environments
from runtime.appmanager.errors import DescriptorError, FieldProblem

_ADAPTER: TypeAdapter[Descriptor] = TypeAdapter(Descriptor)
_TAG_ERRORS = ("union_tag_not_found", "union_tag_invalid")


def load_descriptor(path: Path) -> Descriptor:
    """Read and validate the descriptor at `path`; for wasm, also check its module exists with that sha256.

    Raises DescriptorError naming the file and every bad field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DescriptorError(path, [FieldProblem("", f"cannot read the file: {exc}")]) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = FieldProblem("", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        raise DescriptorError(path, [problem]) from exc
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; nesting past the stack
        problem = FieldProblem("", f"not usable JSON: {type(exc).__name__}: {str(exc)[:200]}")
        raise DescriptorError(path, [problem]) from exc
    return parse_descriptor(data, path)


def parse_descriptor(data: Any, path: Path) -> Descriptor:
    """Validate decoded JSON as the descriptor found at `path` (the module is looked up beside it)."""
    try:
        descriptor = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise DescriptorError(path, [_problem(error) for error in exc.errors()]) from exc
    if isinstance(descriptor, WasmDescriptor):
        _check_module(descriptor, path)
    return descriptor


def module_path(descriptor: WasmDescriptor, descriptor_path: Path) -> Path:
    """Where the wasm module of a descriptor read from `descriptor_path` is."""
    return descriptor_path.parent / descriptor.prerequisites.module


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as lowercase hex."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check_module(descriptor: WasmDescriptor, path: Path) -> None:
    module = module_path(descriptor, path)
    folder = path.parent.resolve()
    if not module.resolve().is_relative_to(folder):
        problem = FieldProblem("prerequisites.module", f"{module} leads outside the descriptor's folder")
        raise DescriptorError(path, [problem])
    if not module.is_file():
        problem = FieldProblem("prerequisites.module", f"the module file {module} does not exist")
        raise DescriptorError(path, [problem])
    try:
        actual = file_sha256(module)
    except OSError as exc:
        problem = FieldProblem("prerequisites.module", f"cannot read the module file {module}: {exc}")
        raise DescriptorError(path, [problem]) from exc
    if actual != descriptor.prerequisites.sha256:
        problem = FieldProblem(
            "prerequisites.sha256",
            f"does not match the module {module}: the descriptor says {descriptor.prerequisites.sha256}, "
            f"the file has {actual}",
        )
        raise DescriptorError(path, [problem])


def _problem(error: ErrorDetails) -> FieldProblem:
    """A pydantic error as a field path and a message a person can act on."""
    kind = error["type"]
    if kind in _TAG_ERRORS:
        if not isinstance(error["input"], dict):
            return FieldProblem("", f"the descriptor must be a JSON object, got {_short(error['input'])}")
        expected = ", ".join(environments())
        if "environment" not in error["input"]:
            return FieldProblem("environment", f"required field is missing (one of {expected})")
        given = error["input"]["environment"]
        return FieldProblem("environment", f"must be one of {expected}, got {_short(given)}")
    loc = list(error["loc"])
    if loc and loc[0] in set(PayloadKind):
        loc = loc[1:]
    field = ".".join(f"[{part}]" if isinstance(part, int) else part for part in loc if part != "[key]")
    if not field and kind == "model_attributes_type":
        return FieldProblem("", f"the descriptor must be a JSON object, got {_short(error['input'])}")
    if kind == "missing":
        return FieldProblem(field, "required field is missing")
    if kind == "extra_forbidden":
        return FieldProblem(field, "unknown field")
    if kind == "value_error":
        return FieldProblem(field, error["msg"].removeprefix("Value error, "))
    return FieldProblem(field, f"{error['msg']}, got {_short(error['input'])}")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
