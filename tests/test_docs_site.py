"""The documentation site: built with ``mkdocs build --strict``, served on
loopback, and every page opened in headless Chromium (Debian's ``chromium``).

A page fails when it does not render (no heading, no article text, the
theme's stylesheet or script not applied, an image that does not load), when
loading it raises a script error or a failed request, when it asks for
anything outside the local server (the site must work with no internet; the
browser resolves no other host), or when one of its links to the site points
at a missing page or a missing anchor.

The browser is driven over the DevTools protocol (aiohttp's websocket
client), so no driver package is needed. Without mkdocs (the ``docs``
dependency group) or without Chromium the tests are skipped, saying what to
install, except where they are required: ``HARDY_REQUIRE_DOCS=1`` makes a
missing docs group a failure, and ``HARDY_REQUIRE_CHROMIUM=1`` or ``CI`` set
a missing browser (``.ci/run`` and the CI docs job set both).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIME_LIMIT = 300  # seconds
PAGE_TIME_LIMIT = 30.0  # seconds for one page to load
QUIET = 0.3  # seconds with no browser event before a loaded page is read

PAGE_FACTS = """(() => {
  const article = document.querySelector("article") || document.body;
  const style = getComputedStyle(document.documentElement);
  return {
    title: document.title,
    heading: (article.querySelector("h1") || {}).textContent || "",
    text: article.innerText.trim().length,
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    anchors: [...document.querySelectorAll("[id], a[name]")].map(e => e.id || e.getAttribute("name")),
    images: [...document.images].map(i => i.src),
    broken_images: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    theme_css: style.getPropertyValue("--md-primary-fg-color").trim() !== "",
    theme_js: document.body.querySelector(".md-search__form") !== null
      && typeof window.document$ !== "undefined",
  };
})()"""


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_tools() -> str:
    """The browser to use; skips (or fails where required) without mkdocs or Chromium."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("aiohttp") is None:
        message = "needs the docs dependency group: python -m pip install -e . --group docs"
        if os.environ.get("HARDY_REQUIRE_DOCS") == "1":
            pytest.fail(f"HARDY_REQUIRE_DOCS=1 and the site test {message}")
        pytest.skip(message)
    browser = chromium_path()
    if browser is None:
        message = "needs Debian's chromium: apt-get install -y chromium"
        if os.environ.get("HARDY_REQUIRE_CHROMIUM") == "1" or os.environ.get("CI"):
            pytest.fail(f"HARDY_REQUIRE_CHROMIUM=1 or CI set, and the site test {message}")
        pytest.skip(message)
    return browser


# -- serving a folder on loopback -------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@dataclass
class Site:
    root: Path
    url: str

    def pages(self) -> list[str]:
        return sorted(
            self.url + str(path.relative_to(self.root)).replace(os.sep, "/") for path in self.root.rglob("*.html")
        )

    def file_for(self, url: str) -> Path | None:
        """The served file a same-site URL names, or ``None``."""
        path = unquote(urlsplit(url).path).lstrip("/")
        candidate = self.root / path
        if candidate.is_dir() or path == "" or path.endswith("/"):
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None


def serve(root: Path) -> tuple[Site, http.server.ThreadingHTTPServer]:
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Site(root, f"http://127.0.0.1:{server.server_address[1]}/"), server


# -- the browser ------------------------------------------------------------------------


@dataclass
class PageReport:
    url: str
    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class Browser:
    """Headless Chromium, one tab, driven over the DevTools protocol."""

    def __init__(self, executable: str, profile: Path) -> None:
        args = [
            executable,
            "--headless",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # Every host but loopback fails to resolve: a page that needs the internet shows it.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root (containers)
        args.append("about:blank")
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.profile = profile

    def endpoint(self) -> str:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + PAGE_TIME_LIMIT
        while time.monotonic() < deadline:
            if port_file.is_file():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


async def _visit_all(ws_url: str, site: Site, pages: list[str]) -> list[PageReport]:
    import aiohttp

    ids = itertools.count(1)
    waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
    events: list[dict[str, Any]] = []
    changed = asyncio.Event()

    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:

        async def receive() -> None:
            async for message in ws:
                data = json.loads(message.data)
                if "id" in data and data["id"] in waiting:
                    waiting.pop(data["id"]).set_result(data)
                else:
                    events.append(data)
                    changed.set()

        receiver = asyncio.ensure_future(receive())

        async def send(method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
            number = next(ids)
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            waiting[number] = future
            message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            await ws.send_str(json.dumps(message))
            answer = await asyncio.wait_for(future, PAGE_TIME_LIMIT)
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            return answer.get("result", {})

        try:
            target = await send("Target.createTarget", {"url": "about:blank"})
            attached = await send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
            session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Network", "Log"):
                await send(f"{domain}.enable", session=session)
            await send("Network.setCacheDisabled", {"cacheDisabled": True}, session=session)
            reports = [await _visit(send, session, events, changed, site, page) for page in pages]
        finally:
            receiver.cancel()
    return reports


async def _visit(
    send: Any, session: str, events: list[dict[str, Any]], changed: asyncio.Event, site: Site, url: str
) -> PageReport:
    report = PageReport(url)
    events.clear()
    navigated = await send("Page.navigate", {"url": url}, session=session)
    if navigated.get("errorText"):
        report.problems.append(f"did not load: {navigated['errorText']}")
        return report
    requests: dict[str, str] = {}
    loaded = False
    quiet_since = time.monotonic()
    deadline = time.monotonic() + PAGE_TIME_LIMIT
    seen = 0
    while True:
        for event in events[seen:]:
            method, params = event.get("method"), event.get("params", {})
            if event.get("sessionId") != session:
                continue
            quiet_since = time.monotonic()
            if method == "Page.loadEventFired":
                loaded = True
            elif method == "Network.requestWillBeSent":
                request_url = params["request"]["url"]
                requests[params["requestId"]] = request_url
                if request_url.startswith(("http:", "https:", "ws:", "wss:")) and not request_url.startswith(site.url):
                    report.problems.append(f"asks the internet for {request_url}")
            elif method == "Network.loadingFailed":
                report.problems.append(f"request failed: {requests.get(params['requestId'])} ({params['errorText']})")
            elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
                report.problems.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = (details.get("exception") or {}).get("description") or details.get("text")
                report.problems.append(f"script error: {text}")
            elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
                report.problems.append(f"console error: {[arg.get('value') for arg in params['args']]}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                report.problems.append(f"browser error: {params['entry']['text']}")
        seen = len(events)
        # Loaded, and no event for a while: the page's late requests (scripts
        # fetching more) have had their turn.
        if loaded and time.monotonic() - quiet_since >= QUIET:
            break
        if time.monotonic() > deadline:
            report.problems.append("did not finish loading")
            break
        changed.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), QUIET)
    result = await send("Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True}, session=session)
    report.facts = result.get("result", {}).get("value") or {}
    for image in report.facts.get("broken_images", []):
        report.problems.append(f"image does not load: {image}")
    return report


def visit(browser_executable: str, profile: Path, site: Site, pages: list[str]) -> list[PageReport]:
    browser = Browser(browser_executable, profile)
    try:
        return asyncio.run(_visit_all(browser.endpoint(), site, pages))
    finally:
        browser.close()


def broken_links(site: Site, reports: list[PageReport]) -> list[str]:
    """Links to the site that name a missing file, or an anchor missing from its page."""
    anchors = {urldefrag(report.url)[0]: set(report.facts.get("anchors", [])) for report in reports}
    problems = []
    for report in reports:
        for link in report.facts.get("links", []):
            if not link.startswith(site.url):
                continue
            target, fragment = urldefrag(link)
            file = site.file_for(target)
            if file is None:
                problems.append(f"{report.url}: link to a missing page: {link}")
                continue
            page = site.url + str(file.relative_to(site.root)).replace(os.sep, "/")
            if fragment and file.suffix == ".html" and unquote(fragment) not in anchors.get(page, set()):
                problems.append(f"{report.url}: link to a missing anchor: {link}")
    return problems


# -- the real site ----------------------------------------------------------------------


@dataclass
class Crawl:
    site: Site
    reports: list[PageReport]


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawl]:
    browser = require_tools()
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=BUILD_TIME_LIMIT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"
    site, server = serve(out)
    try:
        yield Crawl(site, visit(browser, tmp_path_factory.mktemp("chromium"), site, site.pages()))
    finally:
        server.shutdown()
        server.server_close()


def test_every_page_renders_without_errors_or_the_internet(crawl: Crawl) -> None:
    problems = []
    for report in crawl.reports:
        facts = report.facts
        found = list(report.problems)
        if not facts.get("heading", "").strip():
            found.append("no heading")
        if facts.get("text", 0) < 40 and not report.url.endswith("/404.html"):
            found.append(f"almost no text ({facts.get('text', 0)} characters)")
        if not facts.get("theme_css"):
            found.append("the theme's stylesheet is not applied")
        if not facts.get("theme_js"):
            found.append("the theme's script did not run")
        problems.extend(f"{report.url}: {problem}" for problem in found)
    assert not problems, "\n".join(problems)


def test_no_internal_link_is_broken(crawl: Crawl) -> None:
    problems = broken_links(crawl.site, crawl.reports)
    assert not problems, "\n".join(problems)


def test_the_site_has_its_pages(crawl: Crawl) -> None:
    """The nav's pages were built and opened: the capabilities, recipes, API, migration guide and report."""
    opened = {urlsplit(report.url).path for report in crawl.reports}
    for page in (
        "circuit-breaker",
        "shared-breakers",
        "retry",
        "fallback-and-timeout",
        "health",
        "migrating",
        "recipes",
        "recipes/httpx",
        "recipes/requests",
        "recipes/aiohttp",
        "recipes/fastapi",
        "recipes/flask",
        "recipes/django",
        "recipes/celery",
        "api",
        "api/breaker",
        "benchmarks",
    ):
        assert f"/{page}/index.html" in opened, page
    api = next(report for report in crawl.reports if report.url.endswith("/api/breaker/index.html"))
    assert "hardy.CircuitBreaker" in api.facts["anchors"]  # generated from the docstrings
    benchmarks = next(report for report in crawl.reports if report.url.endswith("/benchmarks/index.html"))
    assert f"{crawl.site.url}benchmarks/report.png" in benchmarks.facts["images"]  # the chart, loaded
    assert benchmarks.facts["broken_images"] == []


# -- the checker checks -----------------------------------------------------------------

BROKEN_PAGE = """<!doctype html><html><head><title>t</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="https://fonts.example.org/font.css"></head>
<body><h1 id="top">Page</h1><p>text</p>
<a href="other.html">fine</a> <a href="other.html#there">fine anchor</a>
<a href="missing.html">missing page</a>
<a href="other.html#nowhere">missing anchor</a>
<a href="https://example.org/">external, not followed</a>
<img src="missing.png"><script>undefined_function();</script></body></html>"""
OTHER_PAGE = """<!doctype html><html><head><title>o</title><link rel="icon" href="data:,"></head>
<body><h1 id="there">Other</h1></body></html>"""


def test_the_checker_reports_each_kind_of_breakage(tmp_path: Path) -> None:
    browser = require_tools()
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text(BROKEN_PAGE, encoding="utf-8")
    (root / "other.html").write_text(OTHER_PAGE, encoding="utf-8")
    site, server = serve(root)
    try:
        reports = visit(browser, tmp_path / "chromium", site, site.pages())
    finally:
        server.shutdown()
        server.server_close()
    index = next(report for report in reports if report.url.endswith("/index.html"))
    other = next(report for report in reports if report.url.endswith("/other.html"))
    text = "\n".join(index.problems)
    assert "asks the internet for https://fonts.example.org/font.css" in text
    assert "script error" in text
    assert "undefined_function" in text
    assert f"image does not load: {site.url}missing.png" in text
    assert f"HTTP 404: {site.url}missing.png" in text
    assert other.problems == []
    assert broken_links(site, reports) == [
        f"{index.url}: link to a missing page: {site.url}missing.html",
        f"{index.url}: link to a missing anchor: {site.url}other.html#nowhere",
    ]
