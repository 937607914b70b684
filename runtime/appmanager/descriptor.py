"""The app descriptor: what an app build is, what it needs, and how it is identified.

One descriptor describes one build of an app in one environment; the builds of an app share its `name`.
Which prerequisites a descriptor has depends on what builds its `environment` runs (its class's
`payload_kind`, asked of `environments.registry`), so the model is a union of one class per payload kind:
any installed environment that runs wasm modules takes a wasm module's descriptor, and so on.
`docs/apps.md` documents the format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

from environments.base import PayloadKind
from environments.registry import (
    UnknownEnvironment,
    by_preference,
    capabilities,
    environment_ids,
    payload_kind,
)
from runtime.appmanager.params import ParamSpec, check_params


def environments() -> list[str]:
    """The installed environments' ids, the one a build is chosen in by default first."""
    return by_preference(environment_ids())


def _matching(pattern: str, what: str) -> AfterValidator:
    """A validator that accepts strings matching `pattern` and otherwise says they must be `what`."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return AfterValidator(check)


Name = Annotated[
    str, _matching(r"[a-z0-9][a-z0-9_-]{0,63}", "lowercase letters, digits, '-' or '_' (at most 64)")
]
Version = Annotated[str, _matching(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}", "a version such as 1.2.0")]
Sha256 = Annotated[str, _matching(r"[0-9a-f]{64}", "64 lowercase hex digits")]
StrategyName = Annotated[str, _matching(r"[a-z][a-z0-9_]{0,63}", "a strategy name such as 'balanced'")]
ParamName = Annotated[str, _matching(r"[A-Za-z_][A-Za-z0-9_]{0,63}", "an identifier (at most 64)")]
PythonModule = Annotated[
    str, _matching(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", "a dotted Python module name such as apps.tutorialapp")
]
DockerImage = Annotated[
    str,
    _matching(
        r"([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*",
        "a docker repository such as taskapi/tutorialapp",
    ),
]
DockerTag = Annotated[str, _matching(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "a docker tag such as 0.1.0")]
DockerDigest = Annotated[str, _matching(r"sha256:[0-9a-f]{64}", "'sha256:' and 64 lowercase hex digits")]


def _relative_module_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or "\\" in value or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"must be a path relative to the descriptor's folder, inside it, got {value!r}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WasmPrerequisites(_Strict):
    """A gWASM module: its file, relative to the descriptor's folder, and the sha256 of its bytes."""

    module: Annotated[str, AfterValidator(_relative_module_path)]
    sha256: Sha256


class DockerPrerequisites(_Strict):
    """A docker image: repository, tag, and its digest once known."""

    image: DockerImage
    tag: DockerTag
    digest: DockerDigest | None = None


def _command(value: list[str]) -> list[str]:
    if not value or not value[0] or any("\x00" in part for part in value):
        raise ValueError("must be a non-empty list: the program, then its arguments")
    return value


def _absolute_work_dir(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        raise ValueError(f"must be an absolute path below / such as /golem/work, got {value!r}")
    return value


class LocalPrerequisites(_Strict):
    """An app served by a local child process (development only: no sandbox).

    `module`: the Python package, served as `python -m MODULE` on this node's interpreter unless `command`
    names the app's own (an interpreter or venv, a binary; a relative program path is resolved against the
    descriptor's folder). `work_dir`: the absolute path the app insists its work dir is at (Golem's SDK
    apps use /golem/work); the node binds the work dir there in a private mount namespace.
    """

    module: PythonModule
    command: Annotated[list[str], AfterValidator(_command)] | None = None
    work_dir: Annotated[str, AfterValidator(_absolute_work_dir)] | None = None


class ResourceNeeds(_Strict):
    """What a provider must have to compute the app's subtasks."""

    min_memory_mib: int = Field(default=0, ge=0)
    gpu: bool = False


class Redundancy(_Strict):
    """Redundant computation, for results no re-execution can check (docker, GPU): each subtask goes to
    `quorum` different providers, and is verified by the app only once `quorum` results agree. A
    disagreement brings in up to `referees` more providers; results outside the agreeing group are forged.

    `compare`: `bytes` (equal sha256) or `pixels` (images of equal size with PSNR >= `min_psnr` dB).
    """

    quorum: int = Field(ge=2, le=5)
    referees: int = Field(default=1, ge=0, le=3)
    compare: Literal["bytes", "pixels"] = "bytes"
    min_psnr: float = Field(default=40.0, gt=0, allow_inf_nan=False)


class DescriptorBase(_Strict):
    """The fields every descriptor has, whatever its environment."""

    payload_kind: ClassVar[PayloadKind]
    """What the builds this class describes are; `environment` must be one that runs them."""

    name: Name
    version: Version
    description: str = Field(default="", max_length=500)
    environment: str
    prerequisites: BaseModel
    resources: ResourceNeeds = Field(default_factory=ResourceNeeds)
    market_strategy: StrategyName = "balanced"
    max_benchmark_score: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    parameters: dict[ParamName, ParamSpec] = Field(default_factory=dict)
    redundancy: Redundancy | None = None
    provider_server: Literal["per_call", "reusable"] = "per_call"
    """`per_call` (Golem's convention): a provider app server serves one Compute and exits; `reusable`: the
    app accepts `--persistent` and one server may serve many Computes."""

    @field_validator("environment")
    @classmethod
    def _runs_this_kind(cls, value: str) -> str:
        try:
            kind = payload_kind(value)
        except UnknownEnvironment as exc:
            raise ValueError(str(exc)) from exc
        if kind is not cls.payload_kind:
            raise ValueError(f"environment {value} runs {kind} builds, not {cls.payload_kind} ones")
        return value

    @field_validator("resources")
    @classmethod
    def _gpu_needs_gpu_environment(cls, value: ResourceNeeds, info: ValidationInfo) -> ResourceNeeds:
        environment = info.data.get("environment")
        if value.gpu and environment is not None and not capabilities(environment).gpu:
            with_gpus = [env for env in environments() if capabilities(env).gpu]
            raise ValueError(
                f"gpu: true needs an environment with GPUs ({', '.join(with_gpus) or 'none installed'}), "
                f"not {environment}"
            )
        return value

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Task parameters checked against `parameters`, defaults filled in (ValueError names the bad one)."""
        return check_params(self.parameters, params)


class WasmDescriptor(DescriptorBase):
    """A gWASM build, served through the wasm adapter (sandboxed)."""

    payload_kind = PayloadKind.WASM_MODULE
    prerequisites: WasmPrerequisites


class DockerDescriptor(DescriptorBase):
    """A docker build (in an environment with GPUs when it needs one)."""

    payload_kind = PayloadKind.CONTAINER_IMAGE
    prerequisites: DockerPrerequisites


class LocalDescriptor(DescriptorBase):
    """A Python build run as a plain child process: for app development only, unsandboxed."""

    payload_kind = PayloadKind.PYTHON_PACKAGE
    prerequisites: LocalPrerequisites


def descriptor_tag(data: Any) -> str | None:
    """Which descriptor class decoded JSON (or a descriptor) is: the payload kind its `environment` runs;
    None when the environment is missing or not installed (`loading.py` says which)."""
    environment = data.get("environment") if isinstance(data, dict) else getattr(data, "environment", None)
    if not isinstance(environment, str):
        return None
    try:
        return payload_kind(environment).value
    except UnknownEnvironment:
        return None


Descriptor: TypeAlias = Annotated[
    Annotated[WasmDescriptor, Tag(PayloadKind.WASM_MODULE.value)]
    | Annotated[DockerDescriptor, Tag(PayloadKind.CONTAINER_IMAGE.value)]
    | Annotated[LocalDescriptor, Tag(PayloadKind.PYTHON_PACKAGE.value)],
    Discriminator(descriptor_tag),
]
"""Any descriptor; the payload kind of its `environment` decides which class (and so which prerequisites)
it is."""
