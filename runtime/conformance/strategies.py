"""Hypothesis strategies for protocol requests that no app may accept, and budgets for slow rules."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from runtime.conformance.model import json_object

# Each breaks the id rule of docs/protocol.md (1-128 of [A-Za-z0-9_.-], a letter or digit first, no "..").
BAD_IDS = st.sampled_from(
    [
        *("", ".", "..", "../escape", "a/b", "/abs", ".hidden", "-dash", "_under", "a..b"),
        *("sp ace", "tab\t", "newline\n", "x" * 129, "ünïcode", "back\\slash"),
    ]
)

# Parameters that are not a JSON object (the empty string is not among them: it means `{}`).
BAD_JSON = st.one_of(
    st.sampled_from(["{", "not json", "[1, 2]", "42", "null", "true", '"text"', "{'single': 1}", '{"a": ']),
    st.text(max_size=12).filter(lambda text: not json_object(text)),
)

# Mostly room for several subtasks at once; sometimes 1.
MAX_SUBTASKS = st.one_of(st.integers(2, 8), st.just(1))

NODE_IDS = st.sampled_from(["node-a", "node-b", ""])


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True in roughly one example of `n`: a budget for rules too slow to run in every example."""
    return st.integers(1, n).map(lambda k: k == n)


def weighted(choices: Sequence[tuple[str, int]]) -> st.SearchStrategy[str]:
    """One of the names, each as likely as its weight (heavier ones first: Hypothesis leans to them)."""
    ordered = sorted(choices, key=lambda choice: -choice[1])
    return st.sampled_from([name for name, weight in ordered for _ in range(weight)])
