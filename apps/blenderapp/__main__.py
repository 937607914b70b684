"""Entrypoint: `python -m apps.blenderapp requestor PORT` / `python -m apps.blenderapp provider PORT`."""

import sys

from apps.blenderapp.provider import BlenderProvider
from apps.blenderapp.requestor import BlenderRequestor
from apps.sdk.server import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], requestor=BlenderRequestor, provider=BlenderProvider, prog="blenderapp"))
