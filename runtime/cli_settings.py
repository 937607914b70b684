"""Task parameters given on the command line as repeated `--set KEY=VALUE`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from runtime.appmanager.params import ParamSpec, matches_type

EXAMPLES = {
    "string": "hello",
    "integer": "16",
    "number": "0.5",
    "boolean": "true",
    "array": "'[1, 2]'",
    "object": "'{\"a\": 1}'",
}
"""A value of each parameter type as typed in a shell, for hints."""


def _split(item: str) -> tuple[str, str]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
    return key, raw


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_settings(settings: tuple[str, ...]) -> dict[str, Any]:
    """`key=value` pairs into task parameters; a value is JSON when it parses as JSON, else a string."""
    return {key: _json_or_text(raw) for key, raw in map(_split, settings)}


def task_params(
    app: str, schema: Mapping[str, ParamSpec], params: Mapping[str, Any], settings: tuple[str, ...]
) -> dict[str, Any]:
    """`params` (from `--set` `settings` and wherever else) read by the app's parameter schema;
    `click.UsageError` lists every problem at once.

    A string parameter set with `--set` takes its value as typed (`--set input=123` is the string "123"; a
    JSON string, `--set 'input="123"'`, is read as JSON). An app without a schema checks its own.
    """
    checked = dict(params)
    for key, raw in map(_split, settings):
        spec = schema.get(key)
        if spec is not None and spec.type == "string" and not isinstance(checked.get(key), str):
            checked[key] = raw
    problems = _problems(schema, checked) if schema else []
    if problems:
        takes = ", ".join(f"{name} ({spec.type})" for name, spec in schema.items())
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise click.UsageError(f"bad task parameters for {app} (it takes {takes}):\n{lines}")
    return checked


def _problems(schema: Mapping[str, ParamSpec], params: Mapping[str, Any]) -> list[str]:
    problems = [f"{name}: unknown parameter" for name in params if name not in schema]
    for name, spec in schema.items():
        if name not in params:
            if spec.required:
                problems.append(f"{name}: required ({spec.type}), e.g. --set {name}={EXAMPLES[spec.type]}")
        elif not matches_type(spec.type, params[name]):
            problems.append(
                f"{name}: must be {spec.type}, got {json.dumps(params[name])}; "
                f"e.g. --set {name}={EXAMPLES[spec.type]}"
            )
    return problems
