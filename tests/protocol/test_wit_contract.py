"""protos/taskapi.wit says what protos/taskapi.proto says: a test fails as soon as the two drift apart.

The proto side is read from the generated descriptor (`protos.taskapi_pb2`, itself checked current by
test_generated_code.py); the WIT side from the .wit text with a small reader of the subset it uses.
The mapping rules are the ones in the .wit's header comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

from apps.sdk import errors as sdk_errors
from environments.wasm.component_adapter import WIT_PACKAGE, interface_name
from protos import taskapi_pb2

WIT_FILE = Path(__file__).resolve().parents[2] / "protos" / "taskapi.wit"
NODE_SERVED_RPCS = {"Shutdown"}
"""Rpcs the node answers itself, so no component exports them."""
SDK_SERVED_SERVICES = {"RequestorAppBatch"}
"""Services the SDK server answers for every app through the app's single calls (apps/sdk/batch.py), so no
component exports them."""
INTERFACES = {"RequestorApp": "requestor", "ProviderApp": "provider"}
SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_INT32: "s32",
    FieldDescriptor.TYPE_FLOAT: "f32",
    FieldDescriptor.TYPE_BOOL: "bool",
}


def kebab(name: str) -> str:
    """CamelCase or snake_case as WIT's kebab-case."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).replace("_", "-").lower()


@dataclass
class Wit:
    """The parts of a .wit file the contract is about."""

    package: str = ""
    records: dict[str, dict[str, str]] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    variants: dict[str, list[str]] = field(default_factory=dict)
    functions: dict[str, dict[str, str]] = field(default_factory=dict)
    worlds: dict[str, list[str]] = field(default_factory=dict)


def _body_items(body: str) -> list[str]:
    return [item.strip() for item in body.split(",") if item.strip()]


def parse_wit(text: str) -> Wit:
    """Read package, records, enums, variants, interface functions and worlds (comments dropped)."""
    text = re.sub(r"//[^\n]*", "", text)
    wit = Wit()
    package = re.search(r"^\s*package\s+([^;]+);", text, re.M)
    assert package, "the .wit has no package declaration"
    wit.package = package.group(1).strip()
    for kind, name, body in re.findall(r"\b(record|enum|variant)\s+([\w-]+)\s*\{([^}]*)\}", text):
        items = _body_items(body)
        if kind == "record":
            pairs = (item.split(":", 1) for item in items)
            wit.records[name] = {key.strip().lstrip("%"): value.strip() for key, value in pairs}
        elif kind == "enum":
            wit.enums[name] = [item.lstrip("%") for item in items]
        else:
            wit.variants[name] = [item.split("(")[0].strip() for item in items]
    for name, body in re.findall(r"\binterface\s+([\w-]+)\s*\{((?:[^{}]|\{[^{}]*\})*)\}", text):
        functions = re.findall(r"([\w-]+)\s*:\s*func\(([^)]*)\)\s*(?:->\s*([^;]+))?;", body)
        if functions:
            wit.functions[name] = {
                fn: f"({params.strip()}) -> {(result or '').strip()}" for fn, params, result in functions
            }
    for name, body in re.findall(r"\bworld\s+([\w-]+)\s*\{([^}]*)\}", text):
        wit.worlds[name] = re.findall(r"\b(?:export|include)\s+([\w-]+)\s*;", body)
    return wit


@pytest.fixture(scope="module")
def wit() -> Wit:
    return parse_wit(WIT_FILE.read_text())


def wit_type(proto_field: FieldDescriptor) -> str:
    """The WIT type a proto field maps to."""
    if proto_field.message_type is not None:
        base = kebab(proto_field.message_type.name)
    elif proto_field.enum_type is not None:
        base = kebab(proto_field.enum_type.name)
    else:
        base = SCALARS[proto_field.type]
    if proto_field.is_repeated:
        return f"list<{base}>"
    if proto_field.containing_oneof is not None:
        return f"option<{base}>"
    return base


def expected_signature(method_input: Descriptor, method_output: Descriptor) -> str:
    params = f"request: {kebab(method_input.name)}" if method_input.fields else ""
    ok = kebab(method_output.name) if method_output.fields else "_"
    return f"({params}) -> result<{ok}, error>"


def services() -> list[ServiceDescriptor]:
    """The services a component's functions serve."""
    return [
        service
        for name, service in taskapi_pb2.DESCRIPTOR.services_by_name.items()
        if name not in SDK_SERVED_SERVICES
    ]


def test_every_rpc_is_a_function_with_the_same_messages(wit: Wit) -> None:
    for service in services():
        interface = INTERFACES[service.name]
        expected = {
            kebab(method.name): expected_signature(method.input_type, method.output_type)
            for method in service.methods
            if method.name not in NODE_SERVED_RPCS
        }
        assert wit.functions.get(interface) == expected, f"service {service.name} vs interface {interface}"


def used_messages() -> dict[str, Descriptor]:
    """Every non-empty message the exported rpcs take or give, and the messages inside them."""
    found: dict[str, Descriptor] = {}

    def visit(message: Descriptor) -> None:
        if message.fields and message.name not in found:
            found[message.name] = message
            for item in message.fields:
                if item.message_type is not None:
                    visit(item.message_type)

    for service in services():
        for method in service.methods:
            if method.name not in NODE_SERVED_RPCS:
                visit(method.input_type)
                visit(method.output_type)
    return found


def test_every_message_is_a_record_with_the_same_fields(wit: Wit) -> None:
    messages = used_messages()
    for name, message in messages.items():
        expected = {kebab(item.name): wit_type(item) for item in message.fields}
        assert wit.records.get(kebab(name)) == expected, f"message {name}"
    assert set(wit.records) == {kebab(name) for name in messages}, "records without a proto message"


def test_every_enum_has_the_same_values(wit: Wit) -> None:
    enums = {
        item.enum_type.name: item.enum_type
        for message in used_messages().values()
        for item in message.fields
        if item.enum_type is not None
    }
    assert enums, "the proto's enums were not found"
    for name, enum in enums.items():
        values = [kebab(value.name) for value in sorted(enum.values, key=lambda v: v.number)]
        assert wit.enums.get(kebab(name)) == values, f"enum {name}"


def test_error_cases_are_the_statuses_the_sdk_answers(wit: Wit) -> None:
    classes: list[type[sdk_errors.AppError]] = [sdk_errors.AppError, *sdk_errors.AppError.__subclasses__()]
    statuses = sorted(kebab(cls.status.name) for cls in classes)
    assert sorted(wit.variants["error"]) == statuses
    assert len(set(statuses)) == len(statuses), "two SDK errors share a status"


def test_worlds_export_the_two_sides(wit: Wit) -> None:
    assert wit.worlds == {
        "requestor-app": ["requestor"],
        "provider-app": ["provider"],
        "app": ["requestor-app", "provider-app"],
    }


def test_the_host_calls_the_package_the_wit_declares(wit: Wit) -> None:
    assert wit.package == WIT_PACKAGE
    name, version = WIT_PACKAGE.split("@")
    assert interface_name("provider") == f"{name}/provider@{version}"


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (("max-subtasks-count: s32", "max-subtasks-count: u32"), "a field's type"),
        (("opaque-node-id: string,", ""), "a missing field"),
        (("awaiting-data,", ""), "an enum value"),
        (("    abort-subtask: func", "    cancel-subtask: func"), "a function's name"),
        (("already-exists(string),", ""), "an error case"),
        (("-> result<_, error>;\n}", "-> result<abort-task-request, error>;\n}"), "a function's reply"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_drifted_wit_is_caught(edit: tuple[str, str], what: str) -> None:
    old, new = edit
    text = WIT_FILE.read_text()
    assert old in text
    drifted = parse_wit(text.replace(old, new, 1))
    checks = (
        test_every_rpc_is_a_function_with_the_same_messages,
        test_every_message_is_a_record_with_the_same_fields,
        test_every_enum_has_the_same_values,
        test_error_cases_are_the_statuses_the_sdk_answers,
    )
    caught = []
    for check in checks:
        try:
            check(drifted)
        except AssertionError:
            caught.append(check.__name__)
    assert caught, f"{what} changed in the .wit and no check noticed"
