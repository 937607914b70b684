"""Our generated task-api code against Golem's wire format, written out by hand below.

The table is golemfactory/task-api's golem_task_api/proto/golem_task_api.proto: package, messages
(field name, number, type, label, oneof), the VerifyResult enum, services and methods. Ours may
extend it only in ways an old peer ignores: new fields (with new numbers), messages, services or
methods; never a changed field, a new member of one of Golem's oneofs, or a new VerifyResult value.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from google.protobuf import descriptor_pb2
from grpclib.const import Cardinality

from apps.sdk.handlers import VerifyResult
from protos import taskapi_grpc, taskapi_pb2

GOLEM_PACKAGE = "golem_task_api"


class Field(NamedTuple):
    name: str
    number: int
    type: str  # "string", "int32", "float", "bool", or the message / enum name
    repeated: bool = False
    oneof: str | None = None


GOLEM_MESSAGES: dict[str, list[Field]] = {
    "Infrastructure": [Field("min_memory_mib", 1, "float")],
    "CreateTaskRequest": [
        Field("task_id", 1, "string"),
        Field("max_subtasks_count", 2, "int32"),
        Field("task_params_json", 3, "string"),
    ],
    "CreateTaskReply": [
        Field("env_id", 1, "string"),
        Field("prerequisites_json", 2, "string"),
        Field("inf_requirements", 3, "Infrastructure"),
    ],
    "NextSubtaskRequest": [
        Field("task_id", 1, "string"),
        Field("subtask_id", 2, "string"),
        Field("opaque_node_id", 3, "string"),
    ],
    "NextSubtaskReply": [Field("subtask", 1, "SubtaskReply", oneof="subtask_oneof")],
    "SubtaskReply": [
        Field("subtask_params_json", 1, "string"),
        Field("resources", 2, "string", repeated=True),
    ],
    "ComputeRequest": [
        Field("task_id", 1, "string"),
        Field("subtask_id", 2, "string"),
        Field("subtask_params_json", 3, "string"),
    ],
    "ComputeReply": [Field("output_filepath", 1, "string")],
    "VerifyRequest": [Field("task_id", 1, "string"), Field("subtask_id", 2, "string")],
    "VerifyReply": [Field("result", 1, "VerifyReply.VerifyResult"), Field("reason", 2, "string")],
    "DiscardSubtasksRequest": [
        Field("task_id", 1, "string"),
        Field("subtask_ids", 2, "string", repeated=True),
    ],
    "DiscardSubtasksReply": [Field("discarded_subtask_ids", 1, "string", repeated=True)],
    "RunBenchmarkRequest": [],
    "RunBenchmarkReply": [Field("score", 1, "float")],
    "HasPendingSubtasksRequest": [Field("task_id", 1, "string")],
    "HasPendingSubtasksReply": [Field("has_pending_subtasks", 1, "bool")],
    "AbortTaskRequest": [Field("task_id", 1, "string")],
    "AbortTaskReply": [],
    "AbortSubtaskRequest": [Field("task_id", 1, "string"), Field("subtask_id", 2, "string")],
    "AbortSubtaskReply": [],
    "ShutdownRequest": [],
    "ShutdownReply": [],
}

GOLEM_VERIFY_RESULT = {"SUCCESS": 0, "FAILURE": 1, "AWAITING_DATA": 2, "INCONCLUSIVE": 3}

# service -> method -> (request, reply); every method is unary-unary.
GOLEM_SERVICES: dict[str, dict[str, tuple[str, str]]] = {
    "RequestorApp": {
        "CreateTask": ("CreateTaskRequest", "CreateTaskReply"),
        "NextSubtask": ("NextSubtaskRequest", "NextSubtaskReply"),
        "Verify": ("VerifyRequest", "VerifyReply"),
        "DiscardSubtasks": ("DiscardSubtasksRequest", "DiscardSubtasksReply"),
        "RunBenchmark": ("RunBenchmarkRequest", "RunBenchmarkReply"),
        "HasPendingSubtasks": ("HasPendingSubtasksRequest", "HasPendingSubtasksReply"),
        "AbortTask": ("AbortTaskRequest", "AbortTaskReply"),
        "AbortSubtask": ("AbortSubtaskRequest", "AbortSubtaskReply"),
        "Shutdown": ("ShutdownRequest", "ShutdownReply"),
    },
    "ProviderApp": {
        "Compute": ("ComputeRequest", "ComputeReply"),
        "RunBenchmark": ("RunBenchmarkRequest", "RunBenchmarkReply"),
        "Shutdown": ("ShutdownRequest", "ShutdownReply"),
    },
}

_SCALARS = {
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
}


def _ours() -> descriptor_pb2.FileDescriptorProto:
    """Our file's descriptor as protoc compiled it into protos/taskapi_pb2.py."""
    return descriptor_pb2.FileDescriptorProto.FromString(taskapi_pb2.DESCRIPTOR.serialized_pb)


def _messages() -> dict[str, descriptor_pb2.DescriptorProto]:
    return {message.name: message for message in _ours().message_type}


def _field(message: descriptor_pb2.DescriptorProto, field: descriptor_pb2.FieldDescriptorProto) -> Field:
    if field.type in _SCALARS:
        type_name = _SCALARS[field.type]
    else:
        assert field.type_name.startswith(f".{GOLEM_PACKAGE}."), field.type_name
        type_name = field.type_name.removeprefix(f".{GOLEM_PACKAGE}.")
    oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
    repeated = field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    return Field(field.name, field.number, type_name, repeated, oneof)


def test_the_file_is_proto3_in_golems_package() -> None:
    ours = _ours()
    assert ours.package == GOLEM_PACKAGE
    assert ours.syntax == "proto3"


@pytest.mark.parametrize("name", list(GOLEM_MESSAGES))
def test_message_has_golems_fields_unchanged(name: str) -> None:
    message = _messages().get(name)
    assert message is not None, f"message {name} is missing"
    fields = {field.number: _field(message, field) for field in message.field}
    for expected in GOLEM_MESSAGES[name]:
        assert fields.get(expected.number) == expected, f"{name} field {expected.number}"
    for field in message.field:
        assert not field.proto3_optional, f"{name}.{field.name}: proto3 'optional' changes presence"


@pytest.mark.parametrize("name", list(GOLEM_MESSAGES))
def test_extensions_stay_out_of_golems_oneofs(name: str) -> None:
    message = _messages()[name]
    golem_oneofs = {field.oneof for field in GOLEM_MESSAGES[name] if field.oneof}
    golem_numbers = {field.number for field in GOLEM_MESSAGES[name]}
    for field in message.field:
        extra = _field(message, field)
        if field.number not in golem_numbers:
            assert extra.oneof not in golem_oneofs, f"new field {name}.{extra.name} joins Golem's oneof"


def test_verify_result_has_exactly_golems_values() -> None:
    (enum,) = (e for e in _messages()["VerifyReply"].enum_type if e.name == "VerifyResult")
    assert {value.name: value.number for value in enum.value} == GOLEM_VERIFY_RESULT


def test_the_sdk_verify_result_mirrors_the_wire_values() -> None:
    assert {member.name: member.value for member in VerifyResult} == GOLEM_VERIFY_RESULT


@pytest.mark.parametrize("service", list(GOLEM_SERVICES))
def test_service_has_golems_methods(service: str) -> None:
    services = {s.name: s for s in _ours().service}
    assert service in services, f"service {service} is missing"
    methods = {m.name: m for m in services[service].method}
    for name, (request, reply) in GOLEM_SERVICES[service].items():
        method = methods.get(name)
        assert method is not None, f"{service}.{name} is missing"
        assert method.input_type == f".{GOLEM_PACKAGE}.{request}", f"{service}.{name} request"
        assert method.output_type == f".{GOLEM_PACKAGE}.{reply}", f"{service}.{name} reply"
        assert not method.client_streaming and not method.server_streaming, f"{service}.{name} streams"


@pytest.mark.parametrize("service", list(GOLEM_SERVICES))
def test_grpclib_serves_golems_wire_paths(service: str) -> None:
    """The generated grpclib code routes `/golem_task_api.<Service>/<Method>` to unary-unary handlers."""

    async def unimplemented(self: object, stream: object) -> None:
        raise NotImplementedError

    base = getattr(taskapi_grpc, f"{service}Base")
    concrete = type(service, (base,), dict.fromkeys(base.__abstractmethods__, unimplemented))
    mapping = concrete().__mapping__()
    for name, (request, reply) in GOLEM_SERVICES[service].items():
        handler = mapping.get(f"/{GOLEM_PACKAGE}.{service}/{name}")
        assert handler is not None, f"no handler for /{GOLEM_PACKAGE}.{service}/{name}"
        assert handler.cardinality is Cardinality.UNARY_UNARY
        assert handler.request_type is getattr(taskapi_pb2, request)
        assert handler.reply_type is getattr(taskapi_pb2, reply)
