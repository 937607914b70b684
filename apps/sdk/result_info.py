"""Facts an app reports about a result it verified SUCCESS (`{"device": "CPU"}`), for the node to keep and
show with the task's status.

Golem's VerifyReply has only a verdict and a reason, and its messages stay unchanged here (components build
against them too), so the facts travel in the Verify reply's trailing metadata, under RESULT_INFO_KEY, as a
JSON object of strings: a peer that does not know the key ignores it. A requestor handler opts in by also
deriving from `ReportsResultInfo`. At most MAX_ENTRIES keys and values of MAX_CHARS characters each are
sent and read; anything else in the metadata is dropped (the node shows what the app wrote, nothing more).
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Mapping
from typing import Any

from apps.sdk.workdir import RequestorTaskDir

RESULT_INFO_KEY = "taskapi-result-info"
MAX_ENTRIES = 8
MAX_CHARS = 200
_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")


class ReportsResultInfo(abc.ABC):
    """A requestor handler that reports facts about each result it accepts."""

    @abc.abstractmethod
    async def result_info(self, task_dir: RequestorTaskDir, subtask_id: str) -> dict[str, str]:
        """Facts about `subtask_id`'s result, just verified SUCCESS: short lower-case keys (`device`)
        mapped to short texts."""


def checked(info: Mapping[Any, Any]) -> dict[str, str]:
    """The entries of `info` that may travel: keys of 1-32 lower-case letters, digits or `_` (starting
    with a letter), string values without unprintable characters cut to MAX_CHARS, the first MAX_ENTRIES
    keys in sorted order."""
    entries = sorted(
        (key, "".join(char for char in value if char.isprintable())[:MAX_CHARS])
        for key, value in info.items()
        if isinstance(key, str) and _KEY.fullmatch(key) and isinstance(value, str)
    )
    return dict(entries[:MAX_ENTRIES])


def encode(info: Mapping[str, str]) -> str:
    """The metadata value carrying `info` (ASCII JSON, as gRPC metadata needs)."""
    return json.dumps(checked(info), ensure_ascii=True, sort_keys=True)


def decode(value: str | None) -> dict[str, str]:
    """The facts in a metadata value; {} for none, for anything that is not a JSON object, or for a value
    longer than any `encode` writes."""
    if not value or len(value) > MAX_ENTRIES * (MAX_CHARS * 6 + 48):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return checked(parsed) if isinstance(parsed, dict) else {}
