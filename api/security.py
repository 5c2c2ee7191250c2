"""Security headers on every response (a pure ASGI middleware: no per-request task overhead).

The dashboard loads only its own scripts (plotly.js included, served from the plotly package),
so its Content-Security-Policy allows 'self' only; Plotly sets inline styles on its SVG, hence
``style-src 'unsafe-inline'``. API answers are JSON and get ``nosniff`` and no framing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
DASHBOARD_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """Adds :data:`COMMON` headers everywhere and the CSP on dashboard pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        dashboard = path == "/" or path.startswith("/static/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(COMMON)
                if dashboard:
                    headers.append((b"content-security-policy", DASHBOARD_CSP))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)
