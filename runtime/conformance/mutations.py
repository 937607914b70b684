"""Mutations of an honest result: what a cheating or broken provider might deliver instead.

An empty file and the output of a subtask given other work (other parameters or resources) are never
acceptable, so the state machine judges their Verify at once; a subtask handed out again for the same
work may honestly get other bytes (a timestamp in a PNG), so its output is not used. A flipped bit or a
truncation may be immaterial (a flipped letter of a JSON key the app ignores, a trailing newline cut
off): Verify may accept those, as long as the task's result does not change, which the `mutations`
group checks by running the task to completion.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

MUTATIONS = ("bit_flip", "truncation", "other_output", "empty")
ALWAYS_WRONG = frozenset({"other_output", "empty"})
JUDGED_BY_OUTCOME = ("bit_flip", "truncation")


def mutate(kind: str, honest: bytes, others: Sequence[bytes], data: st.DataObject) -> bytes | None:
    """A mutation of `honest` of `kind`, never equal to it; None when that kind cannot differ here
    (an empty result cannot be truncated; no other subtask's output differs)."""
    mutated: bytes | None = None
    if kind == "bit_flip" and honest:
        position = data.draw(st.integers(0, len(honest) - 1), label="flipped byte")
        bit = data.draw(st.integers(0, 7), label="flipped bit")
        flipped = bytearray(honest)
        flipped[position] ^= 1 << bit
        mutated = bytes(flipped)
    elif kind == "truncation" and len(honest) > 1:
        mutated = honest[: data.draw(st.integers(1, len(honest) - 1), label="kept bytes")]
    elif kind == "other_output":
        different = list(dict.fromkeys(other for other in others if other != honest))
        if different:
            mutated = data.draw(st.sampled_from(different), label="another subtask's output")
    elif kind == "empty":
        mutated = b""
    return mutated if mutated is not None and mutated != honest else None
