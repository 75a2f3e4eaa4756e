"""The health endpoints over real HTTP: ASGI under uvicorn, WSGI under wsgiref, mounted in FastAPI and Flask."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import fastapi
import flask
import pytest
import uvicorn

import hardy
from hardy.health import asgi_app, wsgi_app

from .test_docs_examples import python_blocks

README = Path(__file__).resolve().parent.parent / "README.md"


def make_health(critical_ok: bool) -> hardy.HealthCheck:
    health = hardy.HealthCheck(version="3.0")
    health.register("database", critical=True)(lambda: critical_ok)
    health.register("cache")(lambda: {"healthy": False, "message": "cache down"})
    return health


def get(url: str, accept: str = "application/json") -> tuple[int, str, Any]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.loads(error.read())


def get_once(url: str) -> tuple[int, str | None, Any]:
    """GET without following redirects (urllib follows a 307 silently): status, Location, JSON body."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        connection.request("GET", parts.path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read()
        return response.status, response.getheader("Location"), json.loads(body) if body else None
    finally:
        connection.close()


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        pass


@contextmanager
def wsgiref_server(app: Callable[..., Any]) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def check_endpoints(base: str, prefix: str) -> None:
    code, kind, body = get(f"{base}{prefix}")
    assert code == 200
    assert kind == "application/json"
    assert body["status"] == "degraded"
    assert body["version"] == "3.0"
    assert {check["name"] for check in body["checks"]} == {"database", "cache"}
    code, kind, body = get(f"{base}{prefix}", accept="application/health+json")
    assert code == 200
    assert kind == "application/health+json"
    assert body["status"] == "warn"
    assert body["checks"]["cache"][0]["output"] == "cache down"
    assert get(f"{base}{prefix}/live")[0] == 200
    code, _, body = get(f"{base}{prefix}/ready")
    assert code == 200
    assert [check["name"] for check in body["checks"]] == ["database"]
    assert get(f"{base}{prefix}/nothing")[0] == 404


def check_unhealthy(base: str, prefix: str) -> None:
    code, _, body = get(f"{base}{prefix}")
    assert code == 503
    assert body["status"] == "unhealthy"
    assert get(f"{base}{prefix}/ready")[0] == 503
    assert get(f"{base}{prefix}/live")[0] == 200


def test_asgi_app_under_uvicorn() -> None:
    with uvicorn_server(asgi_app(make_health(True))) as base:
        check_endpoints(base, "/health")
    with uvicorn_server(asgi_app(make_health(False))) as base:
        check_unhealthy(base, "/health")


def test_asgi_app_mounted_in_fastapi() -> None:
    app = fastapi.FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    app.mount("/status", asgi_app(make_health(True)))
    with uvicorn_server(app) as base:
        assert get(f"{base}/hello")[2] == {"hello": "world"}
        check_endpoints(base, "/status")
        for path in ("/status/", "/status/live", "/status/ready"):
            code, location, _ = get_once(f"{base}{path}")
            assert (code, location) == (200, None), path
        # Starlette routes a bare mount point to nobody: it redirects. The README adds a route for it.
        assert get_once(f"{base}/status")[:2] == (307, f"{base}/status/")


def readme_block(needle: str) -> str:
    blocks = [block.code for block in python_blocks(README) if needle in block.code]
    assert len(blocks) == 1, f"README.md has {len(blocks)} Python blocks with {needle!r}"
    return blocks[0]


def test_readme_fastapi_mount_answers_health_itself_under_uvicorn() -> None:
    # The block as the README writes it, with the README's own `health`.
    namespace: dict[str, Any] = {"hardy": hardy, "health": make_health(True)}
    exec(readme_block('app.mount("/health"'), namespace)
    app = namespace["app"]
    assert isinstance(app, fastapi.FastAPI)
    with uvicorn_server(app) as base:
        code, location, body = get_once(f"{base}/health")
        assert (code, location) == (200, None)
        assert body["status"] == "degraded"
        assert {check["name"] for check in body["checks"]} == {"database", "cache"}
        assert get_once(f"{base}/health/live")[:2] == (200, None)
        code, location, body = get_once(f"{base}/health/ready")
        assert (code, location) == (200, None)
        assert [check["name"] for check in body["checks"]] == ["database"]
        check_endpoints(base, "/health")


def test_readme_flask_mount_answers_health_itself() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_flask", "hardy": hardy, "health": make_health(False)}
    exec(readme_block("DispatcherMiddleware("), namespace)
    app = namespace["app"]
    assert isinstance(app, flask.Flask)
    with wsgiref_server(app) as base:
        code, location, body = get_once(f"{base}/health")
        assert (code, location) == (503, None)
        assert body["status"] == "unhealthy"
        assert get_once(f"{base}/health/live")[:2] == (200, None)
        assert get_once(f"{base}/health/ready")[:2] == (503, None)


def test_wsgi_app_under_wsgiref() -> None:
    with wsgiref_server(wsgi_app(make_health(True))) as base:
        check_endpoints(base, "/health")
    with wsgiref_server(wsgi_app(make_health(False))) as base:
        check_unhealthy(base, "/health")


def test_wsgi_app_mounted_in_flask() -> None:
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    app = flask.Flask("mounted")

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/status": wsgi_app(make_health(True))})  # type: ignore[method-assign]
    with wsgiref_server(app) as base:
        assert get(f"{base}/hello")[2] == {"hello": "world"}
        check_endpoints(base, "/status")


def test_apps_want_a_health_check() -> None:
    with pytest.raises(TypeError, match="health must be a HealthCheck"):
        asgi_app(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="health must be a HealthCheck"):
        wsgi_app(None)  # type: ignore[arg-type]


def test_wsgi_app_answers_while_an_abandoned_check_still_runs() -> None:
    health = hardy.HealthCheck()
    release = threading.Event()
    finished = threading.Event()

    @health.register("stuck", timeout=0.1, critical=True)
    def stuck() -> bool:
        release.wait(30)
        finished.set()
        return True

    try:
        with wsgiref_server(wsgi_app(health)) as base:
            code, _, body = get(f"{base}/health")
            assert code == 503
            assert body["checks"][0]["message"] == "timed out after 0.1s"
            assert get(f"{base}/health/ready")[0] == 503
        assert not finished.is_set()  # answered while the check was still running
    finally:
        release.set()


def status_string_health() -> hardy.HealthCheck:
    health = hardy.HealthCheck()
    health.register("db", critical=True)(lambda: hardy.HealthCheckResult("db", "unhealthy"))  # type: ignore[arg-type]
    health.register("odd")(lambda: {"healthy": True, "ratio": float("nan"), "raw": object()})
    return health


def test_apps_render_checks_that_return_status_strings_and_odd_details() -> None:
    with wsgiref_server(wsgi_app(status_string_health())) as base:
        code, _, body = get(f"{base}/health")
        assert code == 503
        assert body["status"] == "unhealthy"
        assert body["checks"][1]["details"]["ratio"] == "nan"
        assert get(f"{base}/health", accept="application/health+json")[2]["status"] == "fail"
    with uvicorn_server(asgi_app(status_string_health())) as base:
        code, _, body = get(f"{base}/health")
        assert code == 503
        assert body["checks"][0]["status"] == "unhealthy"
