"""Task parameters from an app's declared schema (descriptor `parameters`: type, required, default).

`valid_params` draws values *within the declared types*, as a node would send them (defaults filled in
by `check_params`): the schema says nothing about ranges, so an app may refuse many of them with
INVALID_ARGUMENT, which the suite accepts. Values lean small (integers mostly 1..12, short strings) so
that accepted tasks finish within an example; a few large and negative ones test the app's checks.
`off_schema_params` breaks the schema in one way (a required parameter missing, a wrong type, an unknown
name): the app must answer OK or INVALID_ARGUMENT, never crash. Example parameters given by the user
(`--params`) are mixed in as they are. Pinned parameters (`--set NAME=VALUE`) hold one value in every
parameter set drawn here (and in every example), so that a costly dimension stays cheap: blenderapp's
`--set resolution=32x24 --set samples=1`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from runtime.appmanager.params import ParamSpec, ParamType, check_params

JsonDict = dict[str, Any]

# The simplest value of each (what Hypothesis tries first and shrinks to) is a plausible one: 1, 1.0.
SMALL_INTEGERS = st.integers(1, 12)
EDGE_INTEGERS = st.sampled_from([0, -1, 100, 10**9])
INTEGERS = st.one_of(*[SMALL_INTEGERS] * 9, EDGE_INTEGERS)
NUMBERS = st.one_of(
    st.floats(1.0, 2.0),
    st.floats(-2.0, 2.0, allow_nan=False),
    st.integers(-2, 8),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
STRINGS = st.text(max_size=8)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 12), STRINGS)


def value_of(kind: ParamType) -> st.SearchStrategy[Any]:
    """A JSON value of parameter type `kind`."""
    strategies: dict[ParamType, st.SearchStrategy[Any]] = {
        "string": STRINGS,
        "integer": INTEGERS,
        "number": NUMBERS,
        "boolean": st.booleans(),
        "array": st.lists(SCALARS, max_size=4),
        "object": st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),
    }
    return strategies[kind]


def wrong_value_of(kind: ParamType) -> st.SearchStrategy[Any]:
    """A JSON value that is *not* of parameter type `kind`."""
    others: dict[ParamType, st.SearchStrategy[Any]] = {
        "string": st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
        "integer": st.one_of(STRINGS, st.just(1.5), st.booleans(), st.none()),
        "number": st.one_of(STRINGS, st.booleans(), st.none()),
        "boolean": st.one_of(st.integers(0, 1), STRINGS, st.none()),
        "array": st.one_of(
            STRINGS, st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
        ),
        "object": st.one_of(STRINGS, st.integers(), st.lists(st.integers(), max_size=2)),
    }
    return others[kind]


def _schema_params(schema: Mapping[str, ParamSpec], pinned: Mapping[str, Any]) -> st.SearchStrategy[JsonDict]:
    free = {name: spec for name, spec in schema.items() if name not in pinned}
    required = {name: value_of(spec.type) for name, spec in free.items() if spec.required}
    optional = {name: value_of(spec.type) for name, spec in free.items() if not spec.required}
    drawn = st.fixed_dictionaries(required, optional=optional)
    return drawn.map(lambda params: check_params(schema, {**params, **pinned}))


def valid_params(
    schema: Mapping[str, ParamSpec],
    examples: Sequence[JsonDict] = (),
    pinned: Mapping[str, Any] | None = None,
) -> st.SearchStrategy[JsonDict]:
    """Parameters within the schema's types with defaults filled in, or one of `examples`; `pinned`
    parameters have their pinned value in all of them.

    An empty schema (a Golem-style app whose parameters are opaque) gives `{}` and small objects, unless
    `examples` are given.
    """
    pins = dict(pinned or {})
    choices: list[st.SearchStrategy[JsonDict]] = []
    if examples:
        choices += [st.sampled_from([{**example, **pins} for example in examples])] * 2
    if schema:
        choices += [_schema_params(schema, pins)] * 2
    elif not examples:
        choices += [
            st.just(pins),
            st.dictionaries(st.text(max_size=6), SCALARS, max_size=3).map(lambda drawn: {**drawn, **pins}),
        ]
    return st.one_of(choices)


def off_schema_params(
    schema: Mapping[str, ParamSpec], pinned: Mapping[str, Any] | None = None
) -> st.SearchStrategy[JsonDict]:
    """Parameters that break the schema in one way (for an empty schema: arbitrary small objects); the
    parameters `pinned` have their value unless the fault is theirs."""
    pins = dict(pinned or {})
    if not schema:
        return st.dictionaries(st.text(max_size=6), SCALARS, max_size=3)
    base = st.fixed_dictionaries({name: value_of(spec.type) for name, spec in schema.items()}).map(
        lambda drawn: {**drawn, **{name: value for name, value in pins.items() if name in schema}}
    )
    names = sorted(schema)
    required = sorted(name for name, spec in schema.items() if spec.required)
    faults = ["wrong_type", "unknown"] + (["missing"] if required else [])

    def broken(draw: st.DrawFn) -> JsonDict:
        params = dict(draw(base))
        fault = draw(st.sampled_from(faults))
        if fault == "missing":
            del params[draw(st.sampled_from(required))]
        elif fault == "wrong_type":
            name = draw(st.sampled_from(names))
            params[name] = draw(wrong_value_of(schema[name].type))
        else:
            params[draw(st.text(min_size=1, max_size=8).filter(lambda key: key not in schema))] = 1
        return params

    return st.composite(broken)()


def parse_examples(texts: Sequence[str]) -> list[JsonDict]:
    """`--params` values: each a JSON object; ValueError names the first that is not."""
    examples = []
    for text in texts:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--params {text!r} is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError(f"--params {text!r} is not a JSON object")
        examples.append(value)
    return examples


def parse_pins(texts: Sequence[str], schema: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """`--set NAME=VALUE` values: VALUE is JSON, or else taken as a string (`resolution=32x24`).

    ValueError when one has no `=`, or (for an app with a schema) names no parameter of the schema or has
    a value of the wrong type.
    """
    pins: dict[str, Any] = {}
    for text in texts:
        name, sep, raw = text.partition("=")
        if not sep or not name:
            raise ValueError(f"--set {text!r} is not NAME=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if schema:
            spec = schema.get(name)
            if spec is None:
                raise ValueError(f"--set {text!r}: no parameter {name!r}; the app has {sorted(schema)}")
            if isinstance(value, str) and spec.type != "string":
                raise ValueError(f"--set {text!r}: {name!r} is of type {spec.type}, {raw!r} is no JSON value")
            check = {**pins, name: value}
            try:
                check_params({key: schema[key] for key in check}, check)
            except ValueError as exc:
                raise ValueError(f"--set {text!r}: {exc}") from exc
        pins[name] = value
    return pins
