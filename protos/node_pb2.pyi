from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnvOffer(_message.Message):
    __slots__ = ("env_id", "benchmark_score")
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_SCORE_FIELD_NUMBER: _ClassVar[int]
    env_id: str
    benchmark_score: float
    def __init__(self, env_id: _Optional[str] = ..., benchmark_score: _Optional[float] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("provider_id", "envs", "price", "capacity", "memory_mib", "queue")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ENVS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    envs: _containers.RepeatedCompositeFieldContainer[EnvOffer]
    price: float
    capacity: int
    memory_mib: int
    queue: int
    def __init__(self, provider_id: _Optional[str] = ..., envs: _Optional[_Iterable[_Union[EnvOffer, _Mapping]]] = ..., price: _Optional[float] = ..., capacity: _Optional[int] = ..., memory_mib: _Optional[int] = ..., queue: _Optional[int] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("offer",)
    OFFER_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ...) -> None: ...

class JoinReply(_message.Message):
    __slots__ = ("lease_ms", "heartbeat_ms")
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    lease_ms: int
    heartbeat_ms: int
    def __init__(self, lease_ms: _Optional[int] = ..., heartbeat_ms: _Optional[int] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("name", "sha256", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    size: int
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("task_id", "subtask_id", "app_id", "env_id", "prerequisites_json", "subtask_params_json", "resources", "app_module", "deadline_ms", "max_result_bytes", "app_name")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    PREREQUISITES_JSON_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    APP_MODULE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    subtask_id: str
    app_id: str
    env_id: str
    prerequisites_json: str
    subtask_params_json: str
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    app_module: Resource
    deadline_ms: int
    max_result_bytes: int
    app_name: str
    def __init__(self, task_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., app_id: _Optional[str] = ..., env_id: _Optional[str] = ..., prerequisites_json: _Optional[str] = ..., subtask_params_json: _Optional[str] = ..., resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ..., app_module: _Optional[_Union[Resource, _Mapping]] = ..., deadline_ms: _Optional[int] = ..., max_result_bytes: _Optional[int] = ..., app_name: _Optional[str] = ...) -> None: ...

class WorkRequest(_message.Message):
    __slots__ = ("provider_id", "slots", "wait_ms")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    slots: int
    wait_ms: int
    def __init__(self, provider_id: _Optional[str] = ..., slots: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class WorkReply(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("provider_id", "subtask_ids")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_IDS_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    subtask_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, provider_id: _Optional[str] = ..., subtask_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("lease_deadline_ms", "cancelled_subtask_ids")
    LEASE_DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_SUBTASK_IDS_FIELD_NUMBER: _ClassVar[int]
    lease_deadline_ms: int
    cancelled_subtask_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lease_deadline_ms: _Optional[int] = ..., cancelled_subtask_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("wall_ms", "cpu_ns", "peak_memory_bytes", "fuel")
    WALL_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_NS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    FUEL_FIELD_NUMBER: _ClassVar[int]
    wall_ms: int
    cpu_ns: int
    peak_memory_bytes: int
    fuel: int
    def __init__(self, wall_ms: _Optional[int] = ..., cpu_ns: _Optional[int] = ..., peak_memory_bytes: _Optional[int] = ..., fuel: _Optional[int] = ...) -> None: ...

class ResultHeader(_message.Message):
    __slots__ = ("provider_id", "subtask_id", "file_name", "size", "sha256", "usage")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    subtask_id: str
    file_name: str
    size: int
    sha256: str
    usage: Usage
    def __init__(self, provider_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., file_name: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class ResultPart(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ResultHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[ResultHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class SubmitReply(_message.Message):
    __slots__ = ("verdict", "reason")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    verdict: str
    reason: str
    def __init__(self, verdict: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SubmitVerdict(_message.Message):
    __slots__ = ("subtask_id", "verdict", "reason", "status")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    verdict: str
    reason: str
    status: int
    def __init__(self, subtask_id: _Optional[str] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ..., status: _Optional[int] = ...) -> None: ...

class FailureReport(_message.Message):
    __slots__ = ("provider_id", "subtask_id", "reason")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    subtask_id: str
    reason: str
    def __init__(self, provider_id: _Optional[str] = ..., subtask_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FailureReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LeaveRequest(_message.Message):
    __slots__ = ("provider_id",)
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    def __init__(self, provider_id: _Optional[str] = ...) -> None: ...

class LeaveReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubmitTaskRequest(_message.Message):
    __slots__ = ("app", "env_id", "task_params_json", "max_subtasks", "input_ids")
    APP_FIELD_NUMBER: _ClassVar[int]
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    MAX_SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    INPUT_IDS_FIELD_NUMBER: _ClassVar[int]
    app: str
    env_id: str
    task_params_json: str
    max_subtasks: int
    input_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, app: _Optional[str] = ..., env_id: _Optional[str] = ..., task_params_json: _Optional[str] = ..., max_subtasks: _Optional[int] = ..., input_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class InputHeader(_message.Message):
    __slots__ = ("name", "size", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    sha256: str
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class InputPart(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: InputHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[InputHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadInputReply(_message.Message):
    __slots__ = ("input_id",)
    INPUT_ID_FIELD_NUMBER: _ClassVar[int]
    input_id: str
    def __init__(self, input_id: _Optional[str] = ...) -> None: ...

class SubmitTaskReply(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ProviderBill(_message.Message):
    __slots__ = ("provider_id", "subtasks", "fuel", "cpu_ns", "cost")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    FUEL_FIELD_NUMBER: _ClassVar[int]
    CPU_NS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    subtasks: int
    fuel: int
    cpu_ns: int
    cost: float
    def __init__(self, provider_id: _Optional[str] = ..., subtasks: _Optional[int] = ..., fuel: _Optional[int] = ..., cpu_ns: _Optional[int] = ..., cost: _Optional[float] = ...) -> None: ...

class TaskStatus(_message.Message):
    __slots__ = ("task_id", "app", "env_id", "state", "reason", "subtasks_by_state", "outputs", "bills", "outputs_dir", "trust", "result_info")
    class SubtasksByStateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ResultInfoEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUBTASKS_BY_STATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    BILLS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_DIR_FIELD_NUMBER: _ClassVar[int]
    TRUST_FIELD_NUMBER: _ClassVar[int]
    RESULT_INFO_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    app: str
    env_id: str
    state: str
    reason: str
    subtasks_by_state: _containers.ScalarMap[str, int]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    bills: _containers.RepeatedCompositeFieldContainer[ProviderBill]
    outputs_dir: str
    trust: _containers.RepeatedCompositeFieldContainer[ProviderTrust]
    result_info: _containers.ScalarMap[str, str]
    def __init__(self, task_id: _Optional[str] = ..., app: _Optional[str] = ..., env_id: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., subtasks_by_state: _Optional[_Mapping[str, int]] = ..., outputs: _Optional[_Iterable[str]] = ..., bills: _Optional[_Iterable[_Union[ProviderBill, _Mapping]]] = ..., outputs_dir: _Optional[str] = ..., trust: _Optional[_Iterable[_Union[ProviderTrust, _Mapping]]] = ..., result_info: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ProviderTrust(_message.Message):
    __slots__ = ("provider_id", "trust", "sample_rate", "accepted", "reexecuted", "rejected", "forged", "dropped", "blacklisted", "benchmark_inflated")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    TRUST_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REEXECUTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    FORGED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    BLACKLISTED_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_INFLATED_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    trust: float
    sample_rate: float
    accepted: int
    reexecuted: int
    rejected: int
    forged: int
    dropped: bool
    blacklisted: bool
    benchmark_inflated: bool
    def __init__(self, provider_id: _Optional[str] = ..., trust: _Optional[float] = ..., sample_rate: _Optional[float] = ..., accepted: _Optional[int] = ..., reexecuted: _Optional[int] = ..., rejected: _Optional[int] = ..., forged: _Optional[int] = ..., dropped: _Optional[bool] = ..., blacklisted: _Optional[bool] = ..., benchmark_inflated: _Optional[bool] = ...) -> None: ...

class ControlAbortRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ControlAbortReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
