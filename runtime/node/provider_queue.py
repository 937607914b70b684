"""When a provider's queue pays: it asks for assignments beyond its capacity only while its computes are
short next to the round trip that fetches the next one.

A compute slot that frees idles for a RequestWork round trip unless an assignment waits for it in the
provider's queue. For short subtasks that round trip is a large share of each slot's time, and a queue
hides it; for long ones it is a small share, and a queue only keeps work away from other providers at a
task's end (each queued assignment waits out a whole compute). So the queue is used while the recent
computes take at most `QUEUE_WHILE_COMPUTE_UNDER` round trips: then what it can hold back at a task's end
is a few round trips' worth of work.
"""

from __future__ import annotations

from dataclasses import dataclass

QUEUE_WHILE_COMPUTE_UNDER = 4.0
"""The queue is used while a compute takes at most this many RequestWork round trips."""
SMOOTHING = 0.2
"""Weight of the newest sample in the running means."""


@dataclass
class ComputeTimes:
    """Running means of the provider's compute times and of its RequestWork round trips that brought
    work, seconds (None until the first sample)."""

    compute_s: float | None = None
    round_trip_s: float | None = None

    def computed(self, seconds: float) -> None:
        self.compute_s = _mean(self.compute_s, seconds)

    def asked(self, seconds: float) -> None:
        self.round_trip_s = _mean(self.round_trip_s, seconds)

    def queue_pays(self) -> bool:
        """Whether recent computes are short enough for a queue (never before one compute and one round
        trip were seen: a provider starts with its capacity alone)."""
        if self.compute_s is None or self.round_trip_s is None:
            return False
        return self.compute_s <= QUEUE_WHILE_COMPUTE_UNDER * self.round_trip_s


def _mean(mean: float | None, sample: float) -> float:
    return sample if mean is None else (1 - SMOOTHING) * mean + SMOOTHING * sample
