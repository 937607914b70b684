"""The suite's building blocks: parameters within the schema, mutations, snapshots, the report."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.appmanager import ParamSpec, check_params
from runtime.appmanager.params import matches_type
from runtime.conformance.calibration import TaskSpec, value_size
from runtime.conformance.mutations import MUTATIONS, mutate
from runtime.conformance.params import off_schema_params, parse_examples, parse_pins, valid_params
from runtime.conformance.session import compute_changes
from runtime.conformance.snapshot import snapshot

SCHEMA = {
    "text": ParamSpec(type="string", required=True),
    "count": ParamSpec(type="integer", required=True),
    "ratio": ParamSpec(type="number", default=0.5),
    "flag": ParamSpec(type="boolean"),
    "items": ParamSpec(type="array"),
    "extra": ParamSpec(type="object"),
}


@settings(max_examples=200)
@given(valid_params(SCHEMA))
def test_valid_parameters_are_within_the_declared_types(params: dict[str, object]) -> None:
    assert check_params(SCHEMA, params) == params
    assert all(matches_type(SCHEMA[name].type, value) for name, value in params.items())


@settings(max_examples=200)
@given(off_schema_params(SCHEMA))
def test_off_schema_parameters_break_the_schema(params: dict[str, object]) -> None:
    try:
        check_params(SCHEMA, params)
    except ValueError:
        return
    raise AssertionError(f"{params} fits the schema")


PINS = {"text": "pinned", "ratio": 0.25}


@settings(max_examples=100)
@given(valid_params(SCHEMA, [{"text": "example", "count": 3}], PINS))
def test_pinned_parameters_hold_in_every_drawn_set(params: dict[str, object]) -> None:
    assert params["text"] == "pinned" and params["ratio"] == 0.25
    assert check_params(SCHEMA, params) == params


@settings(max_examples=100)
@given(off_schema_params(SCHEMA, PINS))
def test_pins_leave_off_schema_parameters_off_the_schema(params: dict[str, object]) -> None:
    try:
        check_params(SCHEMA, params)
    except ValueError:
        return
    raise AssertionError(f"{params} fits the schema")


def test_set_values_are_json_or_strings_of_the_declared_type() -> None:
    assert parse_pins(["count=3", "text=32x24", "ratio=0.5", 'text="quoted"'], SCHEMA) == {
        "count": 3,
        "text": "quoted",
        "ratio": 0.5,
    }
    assert parse_pins(["anything=[1]"], {}) == {"anything": [1]}
    for bad, why in [
        ("count", "NAME=VALUE"),
        ("nope=1", "no parameter"),
        ("count=x1", "integer"),
        ("count=1.5", "integer"),
        ("flag=1", "boolean"),
    ]:
        try:
            parse_pins([bad], SCHEMA)
        except ValueError as exc:
            assert why in str(exc), (bad, exc)
        else:
            raise AssertionError(bad)


def test_the_size_of_a_task_is_the_log_of_its_dimensions_product() -> None:
    small = TaskSpec(4, '{"resolution": "32x24", "frames": 1, "parts": 2, "flag": true}')
    large = TaskSpec(4, '{"resolution": "320x240", "frames": 1, "parts": 2, "flag": true}')
    assert small.size() < large.size()
    assert abs(value_size({"a": [3, "7x1"], "b": None}) - value_size(4 * 8 * 2)) > 0  # a sum of logs
    assert abs(value_size({"a": [3, "7x1"]}) - (value_size(3) + value_size(7) + value_size(1))) < 1e-9
    assert TaskSpec(1, "").size() == 0.0 and value_size(-(10**400)) > 0


def test_given_examples_are_used_and_checked() -> None:
    assert parse_examples(['{"a": 1}']) == [{"a": 1}]
    for bad in ("[1]", "{"):
        try:
            parse_examples([bad])
        except ValueError as exc:
            assert bad in str(exc)
        else:
            raise AssertionError(bad)


@given(
    st.data(), st.binary(max_size=64), st.lists(st.binary(max_size=8), max_size=3), st.sampled_from(MUTATIONS)
)
def test_a_mutation_never_equals_the_honest_result(
    data: st.DataObject, honest: bytes, others: list[bytes], kind: str
) -> None:
    mutated = mutate(kind, honest, others, data)
    assert mutated != honest
    if kind == "bit_flip" and mutated is not None:
        assert len(mutated) == len(honest) and sum(a != b for a, b in zip(honest, mutated, strict=True)) == 1


def test_compute_may_write_only_inside_its_subtask_dir(tmp_path: Path) -> None:
    (tmp_path / "s1").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    before = snapshot(tmp_path)
    (tmp_path / "s1" / "result.json").write_text("{}")
    (tmp_path / "subtask_inputs").mkdir()
    assert compute_changes(before, snapshot(tmp_path), "s1") == []
    (tmp_path / "other" / "keep.txt").write_text("changed!")
    (tmp_path / "cache.json").write_text("{}")
    (tmp_path / "subtask_inputs" / "planted").write_text("")
    assert compute_changes(before, snapshot(tmp_path), "s1") == [
        "created cache.json",
        "changed other/keep.txt",
        "created subtask_inputs/planted",
    ]
