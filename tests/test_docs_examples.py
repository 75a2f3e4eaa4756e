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
"""

from __future__ import annotations

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
import ast, asyncio, builtins, gc, json, os, sys, traceback, warnings

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
namespace = {"__name__": "__main__", "__builtins__": Builtins(vars(builtins))}
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


def file_params() -> list[object]:
    params: list[object] = []
    for path in doc_files():
        blocks = python_blocks(path)
        if not blocks:
            continue
        marks = [pytest.mark.redis] if any(NEEDS_REDIS.search(block.code) for block in blocks) else []
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
        server.stop()


@pytest.mark.parametrize("path", file_params())
def test_python_blocks_run_as_written(path: Path, core: ModuleType, redis_env: dict[str, str]) -> None:
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
