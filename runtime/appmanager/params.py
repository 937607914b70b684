"""The task parameter schema of an app: name -> {type, required, default, description}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, JsonValue, model_validator

ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]


def matches_type(kind: ParamType, value: Any) -> bool:
    """Whether a JSON value has the parameter type `kind` (JSON Schema's meaning; a bool is no number)."""
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "array": list,
        "object": dict,
    }
    return isinstance(value, expected[kind])


class ParamSpec(BaseModel):
    """One task parameter. A required parameter has no default; a default has the parameter's type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ParamType
    required: bool = False
    default: JsonValue = None
    description: str = ""

    @model_validator(mode="after")
    def _default_fits(self) -> ParamSpec:
        if self.default is not None:
            if self.required:
                raise ValueError("a required parameter cannot have a default")
            if not matches_type(self.type, self.default):
                raise ValueError(f"default {self.default!r} is not of type {self.type}")
        return self


def check_params(schema: Mapping[str, ParamSpec], params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` checked against `schema`, with defaults filled in; ValueError names the first bad parameter.

    An empty schema accepts any parameters: the app checks them itself (Golem apps' parameters are opaque).
    """
    if not schema:
        return dict(params)
    unknown = sorted(set(params) - set(schema))
    if unknown:
        raise ValueError(f"unknown task parameters {unknown}; the app takes {sorted(schema)}")
    checked = dict(params)
    for name, spec in schema.items():
        if name not in params:
            if spec.required:
                raise ValueError(f"task parameter {name!r} is required ({spec.type})")
            if spec.default is not None:
                checked[name] = spec.default
        elif not matches_type(spec.type, params[name]):
            raise ValueError(f"task parameter {name!r} must be of type {spec.type}, got {params[name]!r}")
    return checked
