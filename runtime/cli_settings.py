"""Task parameters given on the command line as repeated `--set KEY=VALUE`."""

from __future__ import annotations

import json
from typing import Any

import click


def parse_settings(settings: tuple[str, ...]) -> dict[str, Any]:
    """`key=value` pairs into task parameters; a value is JSON when it parses as JSON, else a string."""
    params: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params
