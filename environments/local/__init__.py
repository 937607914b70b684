"""The local environment: Python apps as plain child processes, for app development only (no sandbox).

Public API: `LocalEnvironment` (with `LocalConfig`, `LocalPrerequisites`), whose payloads are `LocalRun`s,
each a `LocalRuntime`; `LocalEnvironment.app_serving` serves an app build's `requestor PORT` /
`provider PORT` (`LocalServing`);
`with_work_dir_at` shows an app its work dir at a fixed path.
"""

from environments.local.environment import (
    LocalConfig,
    LocalEnvironment,
    LocalPrerequisites,
    LocalRun,
    LocalRuntime,
    LocalServing,
    with_work_dir_at,
)

__all__ = [
    "LocalConfig",
    "LocalEnvironment",
    "LocalPrerequisites",
    "LocalRun",
    "LocalRuntime",
    "LocalServing",
    "with_work_dir_at",
]
