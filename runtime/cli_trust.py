"""The verification ladder on the command line: its node options, and trust in `taskapi task status`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import click
from rich.table import Table

from protos import node_pb2 as npb
from runtime.node.trust import TrustPolicy
from runtime.node.verification import VerificationConfig


def trust_json(trust: npb.ProviderTrust) -> dict[str, Any]:
    return {
        "provider": trust.provider_id,
        "trust": round(trust.trust, 4),
        "sample_rate": round(trust.sample_rate, 4),
        "accepted": trust.accepted,
        "reexecuted": trust.reexecuted,
        "rejected": trust.rejected,
        "forged": trust.forged,
        "dropped": trust.dropped,
        "blacklisted": trust.blacklisted,
        "benchmark_inflated": trust.benchmark_inflated,
    }


def trust_table(trusts: Iterable[npb.ProviderTrust]) -> Table:
    """One row per provider: trust, re-execution rate, what its results showed, and its flags."""
    table = Table("provider", "trust", "re-exec", "accepted", "re-run", "rejected", "forged", "flags")
    for trust in trusts:
        flags = [
            name
            for name, on in (
                ("dropped", trust.dropped),
                ("blacklisted", trust.blacklisted),
                ("inflated benchmark", trust.benchmark_inflated),
            )
            if on
        ]
        table.add_row(
            trust.provider_id,
            f"{trust.trust:.3f}",
            f"{trust.sample_rate:.0%}",
            str(trust.accepted),
            str(trust.reexecuted),
            str(trust.rejected),
            str(trust.forged),
            ", ".join(flags),
        )
    return table


def verification_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the ladder's node options to a command, handed to it as one `verification` argument."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        reexecute: bool,
        reexec_floor: float,
        probation: int,
        blacklist_forgers: bool,
        **kwargs: Any,
    ) -> None:
        policy = TrustPolicy(probation=probation, floor=reexec_floor, blacklist=blacklist_forgers)
        command(*args, verification=VerificationConfig(policy=policy, reexecute=reexecute), **kwargs)

    options = [
        click.option(
            "--reexecute/--no-reexecute",
            default=True,
            show_default=True,
            help="Re-execute a trust-weighted sample of wasm results; output bytes and fuel must match.",
        ),
        click.option(
            "--reexec-floor",
            default=TrustPolicy.floor,
            show_default=True,
            type=click.FloatRange(0, 1),
            help="Lowest re-execution rate, for the most trusted providers.",
        ),
        click.option(
            "--probation",
            default=TrustPolicy.probation,
            show_default=True,
            type=click.IntRange(min=0),
            help="Results of a new provider re-executed in full before sampling starts.",
        ),
        click.option(
            "--blacklist-forgers",
            is_flag=True,
            help="Refuse a provider caught forging every task, not only that one.",
        ),
    ]
    decorated: Callable[..., None] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated
