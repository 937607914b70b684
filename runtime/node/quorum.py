"""Redundancy with a quorum, for results no re-execution can check (docker, GPU).

An app asks for it in its descriptor (`redundancy`: quorum, referees, compare). Each subtask the app hands
out (the *primary*) gets `quorum - 1` *replicas*: the same parameters and resources under fresh subtask ids
of the same shape, for other providers; the app never sees them. Once every copy has delivered,
`decide` groups the results by agreement:

- a group of at least `quorum` results wins: the others are forged (their providers' trust drops as for a
  forgery), and the primary goes to the app's Verify if it is in the group;
- no such group yet, and a referee left: one more replica (a referee) is wanted;
- no referee left: there is no quorum; the primary's work goes back to the app, nobody is blamed.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.appmanager import Redundancy
from runtime.node.states import SubtaskState
from runtime.node.store import SubtaskRow


class Outcome(enum.Enum):
    WAIT = "wait"
    """Some copy has not delivered yet."""
    REFEREE = "referee"
    """No group reached the quorum: one more replica is wanted."""
    AGREED = "agreed"
    """A group reached the quorum."""
    NO_QUORUM = "no_quorum"
    """No group reached the quorum and no referee is left."""


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    agreeing: tuple[str, ...] = ()
    """Subtask ids of the winning group (AGREED)."""
    forged: tuple[str, ...] = ()
    """Subtask ids outside the winning group (AGREED)."""


def psnr(first: Path, second: Path) -> float:
    """Peak signal-to-noise ratio of two images in dB (inf when equal; 0 when they cannot be compared)."""
    import numpy as np  # only apps comparing pixels need numpy and Pillow
    from PIL import Image

    try:
        with Image.open(first) as a, Image.open(second) as b:
            x = np.asarray(a.convert("RGB"), dtype=np.float64)
            y = np.asarray(b.convert("RGB"), dtype=np.float64)
    except (OSError, SyntaxError, ValueError):
        return 0.0
    if x.shape != y.shape:
        return 0.0
    error = float(np.mean((x - y) ** 2))
    return math.inf if error == 0 else float(10 * np.log10(255.0**2 / error))


def agree(
    spec: Redundancy, first: SubtaskRow, second: SubtaskRow, path: Callable[[SubtaskRow], Path]
) -> bool:
    """Whether two delivered results are the same result, by the app's chosen comparison."""
    if first.result_sha256 == second.result_sha256 and first.result_name == second.result_name:
        return True
    if spec.compare == "bytes" or first.result_name != second.result_name:
        return False
    return psnr(path(first), path(second)) >= spec.min_psnr


def decide(
    spec: Redundancy,
    copies: Sequence[SubtaskRow],
    path: Callable[[SubtaskRow], Path],
) -> Decision:
    """What to do with one subtask's copies (primary and replicas, in any live or delivered state).

    Copies still assigned or wanted mean WAIT. Delivered results are grouped greedily: each joins the first
    group whose first member it agrees with (agreement by equal digest is exact; by pixels it is close
    enough to be transitive in practice).
    """
    if any(copy.state in (SubtaskState.WANTED, SubtaskState.ASSIGNED) for copy in copies):
        return Decision(Outcome.WAIT)
    delivered = [copy for copy in copies if copy.state is SubtaskState.DELIVERED]
    groups: list[list[SubtaskRow]] = []
    for copy in delivered:
        group = next((g for g in groups if agree(spec, g[0], copy, path)), None)
        if group is None:
            groups.append([copy])
        else:
            group.append(copy)
    winner = max(groups, key=len, default=[])
    if len(winner) >= spec.quorum:
        members = {copy.subtask_id for copy in winner}
        return Decision(
            Outcome.AGREED,
            agreeing=tuple(copy.subtask_id for copy in winner),
            forged=tuple(copy.subtask_id for copy in delivered if copy.subtask_id not in members),
        )
    referees_used = len(copies) - spec.quorum
    return Decision(Outcome.REFEREE if referees_used < spec.referees else Outcome.NO_QUORUM)
