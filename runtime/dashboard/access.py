"""Who may use a dashboard: the control token is the login, a session cookie carries it afterwards.

- Logging in with the token sets `session` (HttpOnly, SameSite=Strict; Secure under TLS) and gives the
  page a CSRF token (GET /api/session).
- Without a session, pages redirect to /login and /api/ answers 401: nothing else is served.
- Every state-changing request (any method but GET/HEAD) must come from the dashboard's own origin
  (its Origin header) and, once logged in, carry the session's CSRF token in `X-CSRF-Token`.
- On a loopback address the Host header must name loopback too (a DNS-rebinding page gets nothing).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

SESSION_COOKIE = "session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
PUBLIC_PATHS = frozenset({"/login", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Session:
    session_id: str
    csrf: str


class Access:
    """The sessions of one dashboard, and the middleware enforcing them."""

    def __init__(self, token: str, *, loopback_only: bool, secure_cookie: bool) -> None:
        self._token = token
        self._loopback_only = loopback_only
        self._secure_cookie = secure_cookie
        self._sessions: dict[str, Session] = {}

    def login(self, given: str, response: web.StreamResponse) -> bool:
        """Open a session (its cookie set on `response`) if `given` is the token."""
        if not hmac.compare_digest(given.strip().encode(), self._token.encode()):
            return False
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        self._sessions[session.session_id] = session
        response.set_cookie(
            SESSION_COOKIE,
            session.session_id,
            httponly=True,
            samesite="Strict",
            secure=self._secure_cookie,
            path="/",
        )
        return True

    def logout(self, request: web.Request, response: web.StreamResponse) -> None:
        session = self.session(request)
        if session is not None:
            self._sessions.pop(session.session_id, None)
        response.del_cookie(SESSION_COOKIE, path="/")

    def session(self, request: web.Request) -> Session | None:
        return self._sessions.get(request.cookies.get(SESSION_COOKIE, ""))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._loopback_only and not is_loopback(request.url.host or ""):
            raise web.HTTPMisdirectedRequest(
                text=f"this dashboard answers loopback names only, not {request.host}"
            )
        if request.method not in SAFE_METHODS and not self._same_origin(request):
            raise web.HTTPForbidden(text="cross-site request refused: its Origin is not this dashboard")
        public = request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES)
        if public:
            return await handler(request)
        session = self.session(request)
        if session is None:
            if request.path.startswith("/api/"):
                raise web.HTTPUnauthorized(text="log in first: the control token opens a session")
            raise web.HTTPFound("/login")
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), session.csrf.encode()
        ):
            raise web.HTTPForbidden(text=f"missing or wrong {CSRF_HEADER}")
        return await handler(request)

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is not None and origin == f"{request.scheme}://{request.host}"
