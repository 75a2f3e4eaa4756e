"""Health endpoints without a framework: an ASGI app and a WSGI app.

Both serve ``/health`` (every check; 200 while HEALTHY or DEGRADED, 503 when
UNHEALTHY), ``/health/live`` (200 while the process answers) and
``/health/ready`` (critical checks only; 503 unless they pass). The body is
``application/json`` (``SystemHealth.to_dict``), or
``application/health+json`` (``SystemHealth.to_health_json``) when the
``Accept`` header asks for it. Mounted under a prefix, the routes are also
answered relative to it (``/``, ``/live``, ``/ready``).

Example::

    health_app = hardy.health.asgi_app(health)                   # Starlette, FastAPI
    app.mount("/health", health_app)                             # /health/live, /health/ready
    app.add_route("/health", health_app)                         # /health itself, not a redirect

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/health": hardy.health.wsgi_app(health)})  # Flask
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from .manager import HealthCheck
from .results import HealthStatus, SystemHealth

__all__ = ["asgi_app", "wsgi_app"]

HEALTH_JSON = "application/health+json"
JSON = "application/json"
_ROUTES = {
    "/health": "all",
    "": "all",
    "/": "all",
    "/health/live": "live",
    "/live": "live",
    "/health/ready": "ready",
    "/ready": "ready",
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _route(path: str, prefix: str) -> str | None:
    if prefix and path.startswith(prefix):
        path = path[len(prefix) :]
    return _ROUTES.get(path.rstrip("/") if path not in ("", "/") else path)


def _render(report: SystemHealth, accept: str) -> tuple[int, str, bytes]:
    code = 503 if report.status is HealthStatus.UNHEALTHY else 200
    if HEALTH_JSON in accept:
        return code, HEALTH_JSON, json.dumps(report.to_health_json()).encode()
    return code, JSON, json.dumps(report.to_dict()).encode()


def _live(accept: str) -> tuple[int, str, bytes]:
    if HEALTH_JSON in accept:
        return 200, HEALTH_JSON, b'{"status": "pass"}'
    return 200, JSON, b'{"status": "healthy"}'


def _ready_code(report: SystemHealth) -> int:
    return 200 if report.status is HealthStatus.HEALTHY else 503


class _ASGIApp:
    """The ASGI application :func:`asgi_app` returns.

    A class instance rather than a closure: Starlette and FastAPI treat a
    route endpoint that is a plain function as ``endpoint(request)``, and an
    instance as an ASGI application, which lets ``app.add_route("/health",
    health_app)`` answer ``/health`` itself (a mount alone answers only below
    it and redirects ``/health`` to ``/health/``).
    """

    __slots__ = ("health",)

    def __init__(self, health: HealthCheck) -> None:
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        health = self.health
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        accept = headers.get("accept", "")
        route = _route(scope.get("path", ""), scope.get("root_path", ""))
        if route is None:
            code, kind, body = 404, JSON, b'{"error": "not found"}'
        elif scope.get("method", "GET") not in ("GET", "HEAD"):
            code, kind, body = 405, JSON, b'{"error": "method not allowed"}'
        elif route == "live":
            code, kind, body = _live(accept)
        elif route == "ready":
            report = await health.run_critical()
            _, kind, body = _render(report, accept)
            code = _ready_code(report)
        else:
            code, kind, body = _render(await health.run_all(), accept)
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [
                    (b"content-type", kind.encode()),
                    (b"cache-control", b"no-store"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


def asgi_app(health: HealthCheck) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI application serving ``health``'s endpoints (see the module docstring).

    Example (FastAPI or Starlette: the mount answers ``/health/live`` and
    ``/health/ready``, the route ``/health`` itself, with no redirect)::

        health_app = hardy.health.asgi_app(health)
        app.mount("/health", health_app)
        app.add_route("/health", health_app)
    """
    if not isinstance(health, HealthCheck):
        raise TypeError(f"health must be a HealthCheck, got {health!r}")
    return _ASGIApp(health)


_REASONS = {200: "200 OK", 404: "404 Not Found", 405: "405 Method Not Allowed", 503: "503 Service Unavailable"}


def wsgi_app(health: HealthCheck) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI application serving ``health``'s endpoints (see the module docstring)."""
    if not isinstance(health, HealthCheck):
        raise TypeError(f"health must be a HealthCheck, got {health!r}")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        accept = environ.get("HTTP_ACCEPT", "")
        path = environ.get("PATH_INFO", "")
        route = _route(path, "") if path else "all"
        method = environ.get("REQUEST_METHOD", "GET")
        if route is None:
            code, kind, body = 404, JSON, b'{"error": "not found"}'
        elif method not in ("GET", "HEAD"):
            code, kind, body = 405, JSON, b'{"error": "method not allowed"}'
        elif route == "live":
            code, kind, body = _live(accept)
        elif route == "ready":
            report = health.run_critical_sync()
            _, kind, body = _render(report, accept)
            code = _ready_code(report)
        else:
            code, kind, body = _render(health.run_all_sync(), accept)
        start_response(
            _REASONS[code],
            [("Content-Type", kind), ("Cache-Control", "no-store"), ("Content-Length", str(len(body)))],
        )
        return [b"" if method == "HEAD" else body]

    return app
