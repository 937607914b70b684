"""The one retry delay policy: exponential backoff with jitter.

Delays for consecutive failures start at `first_s` and double up to `max_s`, each drawn from the upper
half of its range, so many clients refused at once do not all come back at once. The node's remote calls
(runtime/node/retry.py) and the environments' engine calls use it alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for consecutive failures: `first_s`, doubling up to `max_s`, each drawn from its upper half.

    `reset()` after a success, so the next failure waits `first_s` again.
    """

    first_s: float = 0.5
    max_s: float = 30.0
    failures: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.first_s * 2**self.failures)
        self.failures += 1
        return self._random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
