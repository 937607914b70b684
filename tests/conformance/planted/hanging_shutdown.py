"""Planted bug: the requestor starts a worker thread that is not a daemon and never ends, so after
Shutdown the server closes but the process never exits.

Caught by: shutdown_graceful_and_prompt.
"""

from __future__ import annotations

import threading
import time

from apps.tutorialapp.requestor import TutorialRequestor

from .serve import serve


def _flush_metrics_forever() -> None:
    while True:
        time.sleep(0.5)


class LingeringRequestor(TutorialRequestor):
    def __init__(self) -> None:
        super().__init__()
        threading.Thread(target=_flush_metrics_forever, name="metrics").start()  # the bug: not a daemon


if __name__ == "__main__":
    serve("hanging_shutdown", requestor=LingeringRequestor)
