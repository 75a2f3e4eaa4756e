"""Every ```python block of README.md and docs/**/*.md runs as written.

The blocks of one file run in order in one fresh interpreter and one
namespace, as a reader pasting them one after the other into ``python -m
asyncio`` would: what one block imports or defines, the next may use, and a
top-level ``await`` is allowed. Each file gets a time limit, so one block
cannot wedge the suite.

A block fails the test when it raises, and also when code it defined looks
up a name that does not exist even if something caught the ``NameError``
(a health check with a missing import is reported UNHEALTHY, not raised),
or when an exception is swallowed unraisably (a coroutine never awaited).

Stand-ins for the reader's own objects (their database, their logger) go in
an HTML comment right before the block, which the page does not show::

    <!-- docs-test: setup
    class Database: ...
    -->

Files that use Redis get a ``redis-server`` of the test's own, its URL in
``REDIS_URL``, and carry the ``redis`` mark.

A page whose examples need libraries hardy itself does not (the recipes:
httpx, Django, Celery...) names them, by import name, in a comment::

    <!-- docs-test: needs httpx django -->

Those libraries are in the ``docs`` dependency group
(``python -m pip install -e . --group docs``). Such a page carries the
``docs`` mark, and without them its test is skipped, saying what to
install; with ``HARDY_REQUIRE_DOCS=1`` (``.ci/run`` and the CI docs job set
it) a missing library fails the test instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT = 120  # seconds for all the blocks of one file

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
SETUP = re.compile(r"<!--\s*docs-test:\s*setup[ \t]*\n(?P<code>.*?)-->\s*\Z", re.DOTALL)
NEEDS = re.compile(r"<!--\s*docs-test:\s*needs\s+(?P<names>[\w.\s]+?)\s*-->")
NEEDS_REDIS = re.compile(r"\bRedisStore\b|^\s*import redis\b|^\s*from redis\b", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    path: str
    line: int  # of the block's first code line, 1-based
    code: str
    setup: str


def doc_files() -> list[Path]:
    return sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])


def python_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The ```python blocks of a Markdown file, each with the setup comment right before it, if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    prose_start = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        language = opening["info"].split()[0].lower() if opening["info"].split() else ""
        end = index + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            end += 1
        if language in ("python", "py", "python3"):
            setup = SETUP.search("\n".join(lines[prose_start:index]) + "\n")
            body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[index + 1 : end]]
            blocks.append(
                Block(
                    path=str(path.relative_to(root)),
                    line=index + 2,
                    code="\n".join(body) + "\n",
                    setup=setup["code"] if setup else "",
                )
            )
        index = end + 1
        prose_start = index
    return blocks


# Runs in the child interpreter: the blocks come as JSON on stdin.
RUNNER = r"""
import ast, asyncio, builtins, gc, json, os, sys, traceback, types, warnings

blocks = json.load(sys.stdin)
missing = []
unraisable = []


class Builtins(dict):
    # Consulted after the namespace for every global a block's code reads:
    # a name found in neither is a NameError, noted even if it is caught.
    def __missing__(self, name):
        missing.append(name)
        raise KeyError(name)


def on_unraisable(info):
    unraisable.append(f"{info.err_msg or 'unraisable exception'}: {info.exc_type.__name__}: {info.exc_value}")


sys.unraisablehook = on_unraisable
# A coroutine never awaited warns from its finalizer: as an error it reaches on_unraisable.
warnings.simplefilter("error", RuntimeWarning)
# The blocks run in a real module that is __main__, as a script's code does:
# frameworks that import their configuration by module name (Django's
# ROOT_URLCONF = __name__, pickling by reference) find what a block defined.
main = types.ModuleType("__main__")
sys.modules["__main__"] = main
namespace = main.__dict__
namespace["__builtins__"] = Builtins(vars(builtins))
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def run(source, where):
    code = compile(source, where, "exec", flags=flags)
    result = eval(code, namespace)
    if asyncio.iscoroutine(result):
        loop.run_until_complete(result)


status = 0
for block in blocks:
    where = f"{block['path']}:{block['line']}"
    try:
        if block["setup"]:
            run(block["setup"], f"{where} (setup)")
        run(block["code"], where)
    except BaseException:
        print(f"docs-test: the block at {where} raised:", file=sys.stderr)
        traceback.print_exc()
        status = 1
        break
    if missing:
        print(f"docs-test: the block at {where} looked up undefined names: {sorted(set(missing))}", file=sys.stderr)
        status = 1
        break
    print(f"docs-test: ran {where}", flush=True)
gc.collect()
if unraisable:
    print(f"docs-test: unraisable exceptions: {unraisable}", file=sys.stderr)
    status = 1
sys.stdout.flush()
sys.stderr.flush()
# Servers or client threads a block started must not keep the process alive.
os._exit(status)
"""


def run_blocks(blocks: list[Block], core: ModuleType, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("HARDY_NO_EXTENSIONS", None)
    if core.IMPLEMENTATION == "py":
        env["HARDY_NO_EXTENSIONS"] = "1"
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([asdict(block) for block in blocks]),
        capture_output=True,
        text=True,
        env=env,
        timeout=TIME_LIMIT,
        cwd=ROOT,
    )


def needed_modules(path: Path) -> list[str]:
    """The import names a page's ``docs-test: needs`` comments list."""
    return [name for match in NEEDS.finditer(path.read_text(encoding="utf-8")) for name in match["names"].split()]


def missing_modules(names: list[str]) -> list[str]:
    return [name for name in names if importlib.util.find_spec(name) is None]


def require_docs_libraries(names: list[str]) -> None:
    """Skip (or, with HARDY_REQUIRE_DOCS=1, fail) when a page's libraries are not installed."""
    missing = missing_modules(names)
    if not missing:
        return
    message = f"needs {', '.join(missing)}: python -m pip install -e . --group docs"
    if os.environ.get("HARDY_REQUIRE_DOCS") == "1":
        pytest.fail(f"HARDY_REQUIRE_DOCS=1 and the page {message}")
    pytest.skip(message)


def file_params() -> list[object]:
    params: list[object] = []
    for path in doc_files():
        blocks = python_blocks(path)
        if not blocks:
            continue
        marks = [pytest.mark.redis] if any(NEEDS_REDIS.search(block.code) for block in blocks) else []
        if needed_modules(path):
            marks.append(pytest.mark.docs)
        params.append(pytest.param(path, marks=marks, id=str(path.relative_to(ROOT))))
    return params


@pytest.fixture
def redis_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.node.get_closest_marker("redis") is None:
        yield {}
        return
    port = os.environ.get("HARDY_TEST_REDIS_PORT")
    if port:
        yield {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        return
    from .redis_server import RedisServer

    server = RedisServer().start()
    try:
        yield {"REDIS_URL": f"redis://127.0.0.1:{server.port}/0"}
    finally:
        server.remove()


@pytest.mark.parametrize("path", file_params())
def test_python_blocks_run_as_written(path: Path, core: ModuleType, redis_env: dict[str, str]) -> None:
    require_docs_libraries(needed_modules(path))
    blocks = python_blocks(path)
    result = run_blocks(blocks, core, redis_env)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    ran = [line for line in result.stdout.splitlines() if line.startswith("docs-test: ran ")]
    assert len(ran) == len(blocks), result.stdout


# -- the checker checks -----------------------------------------------------------------


def write(tmp_path: Path, text: str) -> list[Block]:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return python_blocks(page, tmp_path)


def test_extractor_finds_python_blocks_with_their_setup_and_line(tmp_path: Path) -> None:
    blocks = write(
        tmp_path,
        "# Title\n\n```sh\npip install hardy\n```\n\n"
        "<!-- docs-test: setup\nclass Database: ...\n-->\n\n```python\nx = 1\n```\n\ntext\n\n"
        "  ```py\n  y = x + 1\n  ```\n",
    )
    assert [(block.line, block.code, block.setup) for block in blocks] == [
        (12, "x = 1\n", "class Database: ...\n"),
        (18, "y = x + 1\n", ""),
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import hardy\nraise RuntimeError('boom')\n", "RuntimeError: boom"),
        (
            "def disk():\n    return shutil.disk_usage('/')\ntry:\n    disk()\nexcept Exception:\n    pass\n",
            "['shutil']",
        ),
        (
            "import hardy\nhealth = hardy.HealthCheck()\n"
            "@health.register('disk')\ndef disk() -> bool:\n    return shutil.disk_usage('/').free > 0\n"
            "report = health.run_all_sync()\n",
            "['shutil']",
        ),
        ("async def f():\n    pass\nf()\n", "was never awaited"),
    ],
    ids=["raises", "caught-name-error", "unhealthy-check", "never-awaited"],
)
def test_runner_fails_on_errors_even_swallowed_ones(core: ModuleType, code: str, message: str) -> None:
    result = run_blocks([Block("page.md", 3, code, "")], core, {})
    assert result.returncode == 1
    assert message in result.stderr
    assert "page.md:3" in result.stderr or "unraisable" in result.stderr


def test_runner_shares_one_namespace_and_allows_top_level_await(core: ModuleType) -> None:
    blocks = [
        Block("page.md", 3, "import asyncio\nimport hardy\n", ""),
        Block("page.md", 9, "await asyncio.sleep(0)\nvalue = hardy.IMPLEMENTATION\n", ""),
        Block("page.md", 15, "assert value == expected, value\n", f"expected = {core.IMPLEMENTATION!r}\n"),
    ]
    result = run_blocks(blocks, core, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("docs-test: ran ") == 3


def test_needs_comment_names_the_libraries_and_a_missing_one_skips_or_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "page.md"
    page.write_text("# R\n\n<!-- docs-test: needs json\n  hardy_no_such_module -->\n", encoding="utf-8")
    assert needed_modules(page) == ["json", "hardy_no_such_module"]
    assert missing_modules(needed_modules(page)) == ["hardy_no_such_module"]
    monkeypatch.delenv("HARDY_REQUIRE_DOCS", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"hardy_no_such_module: python -m pip install -e \. --group docs"):
        require_docs_libraries(needed_modules(page))
    monkeypatch.setenv("HARDY_REQUIRE_DOCS", "1")
    with pytest.raises(pytest.fail.Exception, match="HARDY_REQUIRE_DOCS=1"):
        require_docs_libraries(needed_modules(page))
    require_docs_libraries(["json"])  # installed: neither skips nor fails


def test_every_recipe_runs_its_examples() -> None:
    """Each recipe page has examples this suite runs, and names the libraries they need."""
    recipes = sorted(path for path in (ROOT / "docs" / "recipes").glob("*.md") if path.name != "index.md")
    assert {path.stem for path in recipes} >= {"httpx", "requests", "aiohttp", "fastapi", "flask", "django", "celery"}
    for path in recipes:
        assert python_blocks(path), f"{path.name} has no python block"
        assert needed_modules(path), f"{path.name} has no docs-test: needs comment"
