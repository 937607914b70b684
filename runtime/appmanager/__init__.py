"""The app manager: app descriptors (validated, content-addressed), their builds, and enable/disable.

See `docs/apps.md` for the descriptor format and how builds are chosen.
"""

from runtime.appmanager.descriptor import (
    Descriptor,
    DescriptorBase,
    DockerDescriptor,
    DockerPrerequisites,
    LocalDescriptor,
    LocalPrerequisites,
    Redundancy,
    ResourceNeeds,
    WasmDescriptor,
    WasmPrerequisites,
    environments,
)
from runtime.appmanager.errors import (
    AppDisabled,
    AppNotAvailable,
    DescriptorError,
    FieldProblem,
    UnknownApp,
)
from runtime.appmanager.identity import app_id, canonical_json
from runtime.appmanager.loading import file_sha256, load_descriptor, parse_descriptor
from runtime.appmanager.manager import App, AppManager, Inventory, default_data_dir
from runtime.appmanager.params import ParamSpec, check_params

__all__ = [
    "App",
    "AppDisabled",
    "AppManager",
    "AppNotAvailable",
    "Descriptor",
    "DescriptorBase",
    "DescriptorError",
    "DockerDescriptor",
    "DockerPrerequisites",
    "FieldProblem",
    "Inventory",
    "LocalDescriptor",
    "LocalPrerequisites",
    "ParamSpec",
    "Redundancy",
    "ResourceNeeds",
    "UnknownApp",
    "WasmDescriptor",
    "WasmPrerequisites",
    "app_id",
    "canonical_json",
    "check_params",
    "default_data_dir",
    "environments",
    "file_sha256",
    "load_descriptor",
    "parse_descriptor",
]
