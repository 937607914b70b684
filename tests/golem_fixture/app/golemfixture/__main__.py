"""`python -m golemfixture requestor|provider PORT [ignored...]`, as Golem's node starts an app."""

import asyncio
import sys

from .service import serve

if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1:]))
