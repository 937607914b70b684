"""Descriptor validation: every malformed file is refused with an error that names the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.appmanager import (
    DescriptorError,
    DockerDescriptor,
    LocalDescriptor,
    WasmDescriptor,
    load_descriptor,
)

from .descriptors import EMPTY_MODULE, WriteDescriptor, wasm_descriptor


def refusal(path: Path) -> DescriptorError:
    with pytest.raises(DescriptorError) as caught:
        load_descriptor(path)
    assert str(path) in str(caught.value)
    return caught.value


def fields(error: DescriptorError) -> list[str]:
    return [problem.field for problem in error.problems]


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (without(wasm_descriptor(), "name"), "name", "required field is missing"),
        (without(wasm_descriptor(), "environment"), "environment", "required field is missing"),
        (wasm_descriptor(version=1), "version", "valid string"),
        (wasm_descriptor(environment="docker"), "environment", "got 'docker'"),
        (wasm_descriptor(name="Has Spaces"), "name", "got 'Has Spaces'"),
        (wasm_descriptor(prerequisites={"module": "demo.wasm"}), "prerequisites.sha256", "missing"),
        (
            wasm_descriptor(prerequisites={"module": "demo.wasm", "sha256": "abc"}),
            "prerequisites.sha256",
            "hex",
        ),
        (
            wasm_descriptor(prerequisites={"module": "../demo.wasm", "sha256": "0" * 64}),
            "prerequisites.module",
            "relative",
        ),
        (wasm_descriptor(resources={"min_memory_mib": -1}), "resources.min_memory_mib", "greater than"),
        (wasm_descriptor(resources={"gpu": True}), "resources", "docker_gpu"),
        (wasm_descriptor(max_benchmark_score=0), "max_benchmark_score", "greater than 0"),
        (wasm_descriptor(colour="blue"), "colour", "unknown field"),
        (wasm_descriptor(parameters={"n": {"type": "float"}}), "parameters.n.type", "'float'"),
        (
            wasm_descriptor(parameters={"n": {"type": "integer", "required": True, "default": 3}}),
            "parameters.n",
            "cannot have a default",
        ),
        (
            wasm_descriptor(parameters={"n": {"type": "integer", "default": "three"}}),
            "parameters.n",
            "not of type integer",
        ),
        (
            {"name": "demo", "version": "1", "environment": "docker_cpu", "prerequisites": {"image": "x"}},
            "prerequisites.tag",
            "missing",
        ),
        (
            {"name": "demo", "version": "1", "environment": "local", "prerequisites": {"module": "a b"}},
            "prerequisites.module",
            "dotted Python module",
        ),
        ([1, 2], "", "must be a JSON object"),
    ],
)
def test_malformed_descriptor_names_the_field(
    write_descriptor: WriteDescriptor, data: Any, field: str, words: str
) -> None:
    error = refusal(write_descriptor(json.dumps(data)))
    assert field in fields(error), error
    assert any(words in problem.message for problem in error.problems), error
    assert (f"{field}: " if field else "") in str(error)


def test_every_bad_field_is_reported_at_once(write_descriptor: WriteDescriptor) -> None:
    data = wasm_descriptor(version=1, market_strategy="Not Valid")
    error = refusal(write_descriptor(without(data, "name")))
    assert {"name", "version", "market_strategy"} <= set(fields(error))


def test_bad_json_says_where(write_descriptor: WriteDescriptor) -> None:
    error = refusal(write_descriptor('{"name": "demo",\n  "version" "1.0"}'))
    assert "not valid JSON" in str(error) and "line 2" in str(error)


def test_unreadable_file_is_refused(write_descriptor: WriteDescriptor) -> None:
    path = write_descriptor("{}")
    path.write_bytes(b"\xff\xfe{}")
    assert "cannot read the file" in str(refusal(path))


def test_sha256_mismatch_names_both_hashes(write_descriptor: WriteDescriptor) -> None:
    path = write_descriptor(wasm_descriptor(), module=EMPTY_MODULE + b"\x00")
    error = refusal(path)
    assert fields(error) == ["prerequisites.sha256"]
    assert wasm_descriptor()["prerequisites"]["sha256"] in str(error) and "demo.wasm" in str(error)


def test_missing_module_names_the_file(write_descriptor: WriteDescriptor) -> None:
    error = refusal(write_descriptor(wasm_descriptor(), module=None))
    assert fields(error) == ["prerequisites.module"]
    assert "demo.wasm does not exist" in str(error)


def test_module_symlinked_outside_the_folder_is_refused(
    write_descriptor: WriteDescriptor, tmp_path: Path
) -> None:
    path = write_descriptor(wasm_descriptor(), module=None)
    (tmp_path / "elsewhere.wasm").write_bytes(EMPTY_MODULE)
    (path.parent / "demo.wasm").symlink_to(tmp_path / "elsewhere.wasm")
    assert "outside the descriptor's folder" in str(refusal(path))


def test_each_environment_gets_its_own_prerequisites(write_descriptor: WriteDescriptor) -> None:
    wasm = load_descriptor(write_descriptor(wasm_descriptor(), folder="w"))
    docker = load_descriptor(
        write_descriptor(
            {
                "name": "demo",
                "version": "1",
                "environment": "docker_gpu",
                "prerequisites": {"image": "taskapi/demo", "tag": "1", "digest": "sha256:" + "a" * 64},
                "resources": {"gpu": True, "min_memory_mib": 2048},
            },
            folder="d",
        )
    )
    local = load_descriptor(
        write_descriptor(
            {"name": "demo", "version": "1", "environment": "local", "prerequisites": {"module": "apps.x"}},
            folder="l",
        )
    )
    assert isinstance(wasm, WasmDescriptor) and wasm.prerequisites.module == "demo.wasm"
    assert isinstance(docker, DockerDescriptor) and docker.resources.gpu and docker.prerequisites.digest
    assert isinstance(local, LocalDescriptor) and local.prerequisites.module == "apps.x"
    assert wasm.market_strategy == "balanced" and wasm.resources.min_memory_mib == 0


def test_check_params_applies_the_schema(write_descriptor: WriteDescriptor) -> None:
    schema = {
        "input": {"type": "string", "required": True},
        "rounds": {"type": "integer", "default": 4},
        "scale": {"type": "number"},
    }
    descriptor = load_descriptor(write_descriptor(wasm_descriptor(parameters=schema)))
    assert descriptor.check_params({"input": "x"}) == {"input": "x", "rounds": 4}
    assert descriptor.check_params({"input": "x", "scale": 2}) == {"input": "x", "rounds": 4, "scale": 2}
    for bad, words in [
        ({}, "'input' is required"),
        ({"input": "x", "rounds": True}, "'rounds' must be of type integer"),
        ({"input": "x", "other": 1}, "unknown task parameters ['other']"),
    ]:
        with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
            descriptor.check_params(bad)


def test_without_a_schema_any_params_pass(write_descriptor: WriteDescriptor) -> None:
    descriptor = load_descriptor(write_descriptor(wasm_descriptor()))
    assert descriptor.check_params({"anything": [1]}) == {"anything": [1]}
