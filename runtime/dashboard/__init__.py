"""The web dashboard of a requestor or a provider: an aiohttp server on the node's own event loop.

Pages are static files (static/) driven by plain JavaScript; live state arrives by server-sent events.
The control token is the login; see access.py for sessions, CSRF and origin checks.
"""
