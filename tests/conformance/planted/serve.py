"""The entrypoint the planted Python apps share: tutorialapp's handlers, or the planted replacements."""

from __future__ import annotations

import sys
from collections.abc import Callable

from apps.sdk import ProviderAppHandler, RequestorAppHandler
from apps.sdk.server import main
from apps.tutorialapp.provider import TutorialProvider
from apps.tutorialapp.requestor import TutorialRequestor


def serve(
    name: str,
    requestor: Callable[[], RequestorAppHandler] = TutorialRequestor,
    provider: Callable[[], ProviderAppHandler] = TutorialProvider,
) -> None:
    sys.exit(main(sys.argv[1:], requestor=requestor, provider=provider, prog=name))
