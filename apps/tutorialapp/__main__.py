"""Entrypoint: `python -m apps.tutorialapp requestor PORT` / `python -m apps.tutorialapp provider PORT`."""

import sys

from apps.sdk.server import main
from apps.tutorialapp.provider import TutorialProvider
from apps.tutorialapp.requestor import TutorialRequestor

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], requestor=TutorialRequestor, provider=TutorialProvider, prog="tutorialapp"))
