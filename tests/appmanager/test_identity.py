"""App ids: the same content always gives the same id, and any change of content a new one."""

from __future__ import annotations

import hashlib
import json

from runtime.appmanager import app_id, canonical_json, load_descriptor

from .descriptors import EMPTY_MODULE, WriteDescriptor, wasm_descriptor


def test_canonical_json_is_sorted_compact_and_leaves_defaults_out(write_descriptor: WriteDescriptor) -> None:
    descriptor = load_descriptor(write_descriptor(wasm_descriptor()))
    module_hash = hashlib.sha256(EMPTY_MODULE).hexdigest()
    expected = (
        '{"environment":"wasm","name":"demo","prerequisites":{"module":"demo.wasm","sha256":"'
        + module_hash
        + '"},"version":"1.0.0"}'
    ).encode()
    assert canonical_json(descriptor) == expected
    assert app_id(descriptor) == hashlib.sha256(expected).hexdigest()


def test_id_ignores_formatting_key_order_and_explicit_defaults(write_descriptor: WriteDescriptor) -> None:
    plain = wasm_descriptor()
    explicit = {
        **dict(reversed(list(plain.items()))),
        "description": "",
        "market_strategy": "balanced",
        "max_benchmark_score": None,
        "resources": {"gpu": False, "min_memory_mib": 0},
        "parameters": {},
    }
    first = load_descriptor(write_descriptor(json.dumps(plain), folder="a"))
    second = load_descriptor(write_descriptor(json.dumps(explicit, indent=4), folder="b"))
    assert app_id(first) == app_id(second)


def test_id_changes_with_any_content(write_descriptor: WriteDescriptor) -> None:
    base = app_id(load_descriptor(write_descriptor(wasm_descriptor(), folder="base")))
    variants = {
        "version": wasm_descriptor(version="1.0.1"),
        "module": wasm_descriptor(module=EMPTY_MODULE + b"\0"),
        "memory": wasm_descriptor(resources={"min_memory_mib": 1}),
        "strategy": wasm_descriptor(market_strategy="cheapest"),
        "parameter": wasm_descriptor(parameters={"n": {"type": "integer"}}),
    }
    ids = set()
    for folder, data in variants.items():
        module = EMPTY_MODULE + b"\0" if folder == "module" else EMPTY_MODULE
        ids.add(app_id(load_descriptor(write_descriptor(data, folder=folder, module=module))))
    assert base not in ids and len(ids) == len(variants)
