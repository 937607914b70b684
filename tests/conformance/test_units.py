"""The suite's building blocks: parameters within the schema, mutations, snapshots, the report."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.appmanager import ParamSpec, check_params
from runtime.appmanager.params import matches_type
from runtime.conformance.mutations import MUTATIONS, mutate
from runtime.conformance.params import off_schema_params, parse_examples, valid_params
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
