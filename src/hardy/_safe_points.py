"""Where a sync deadline may interrupt a thread, and where it must wait.

A deadline is delivered as an exception raised inside the running thread. An
exception raised between ``lock.acquire()`` and the ``try:`` that releases the
lock leaves the lock held for ever; the standard library has such windows
(``logging.Handler.handle``, ``threading.Condition.__enter__``, which
``queue.Queue`` uses, ``concurrent.futures``, ``importlib``'s module locks).
So at fire time the timer looks at the target thread's innermost Python frame
and, while it runs code of one of the modules below, waits a short tick and
looks again: the exception lands only once the thread is back in other code.

The timer also looks at what the thread is handling: while the deadline's own
exception is being handled (an ``except``, ``finally`` or ``__exit__`` that it
is propagating through), it is not delivered again, so cleanup runs to its end.

Both cores take their decisions from the data here: the twin through
:func:`verdict`, the compiled core by reading :data:`rules`, :data:`exempt`
and :data:`verdicts` directly, in C, so that looking and delivering form one
step that no other thread can interleave.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Mapping
from importlib.machinery import ModuleSpec
from types import FrameType, ModuleType
from typing import Any

__all__ = [
    "DEFAULT_MODULES",
    "FREE",
    "HANDLING",
    "UNSAFE",
    "defer_timeouts_in",
    "deferred",
    "exempt",
    "handling",
    "rules",
    "snapshot",
    "verdict",
    "verdicts",
]

# What the timer may do to a thread whose deadline is due.
FREE = 0  # deliver now
UNSAFE = 1  # the innermost frame is in a deferred module: look again after a short tick
HANDLING = 2  # the thread is handling the deadline's exception: do not deliver it again

DEFAULT_MODULES = (
    "threading",
    "logging",
    "queue",
    "concurrent.futures",
    "asyncio",
    "importlib",
    "contextlib",
    "multiprocessing",
    "tempfile",
    "weakref",
    "_weakrefset",
    "_threading_local",
    "hardy",
)

# hardy's own files where a deadline must land: the sleep between retries
# (the caller waits there on purpose) and the demo's simulated dependency.
_HARDY_EXEMPT = ("_sleep.py", "demo.py")

# Path prefixes of deferred code: a package's directory (ending in a
# separator), a module's file, or ``<frozen name`` for frozen modules.
rules: list[str] = []
exempt: set[str] = set()
# Verdict per code file name, filled on first use; cleared when rules change.
verdicts: dict[str, bool] = {}
# Only serialises writers; readers (the timer) see each single update whole.
_lock = threading.Lock()

# How deep to follow ``__context__`` when asking what a thread handles.
_CONTEXT_DEPTH = 64


def _prefixes(name: str, spec: ModuleSpec | None) -> tuple[list[str], list[str]]:
    """The rules that cover module ``name``'s code, and its files that stay exempt."""
    if spec is None:
        raise ValueError(f"modules: no module named {name!r}")
    found: list[str] = []
    if spec.origin == "frozen":
        found.append(f"<frozen {name}>")
    paths = spec.submodule_search_locations
    if paths is not None:
        found.extend(os.path.join(path, "") for path in paths)
        found.append(f"<frozen {name}.")  # importlib's bootstrap modules are frozen
    elif spec.has_location and isinstance(spec.origin, str):
        found.append(spec.origin)
    if not found:
        raise ValueError(f"module {name!r} has no Python code for a deadline to wait in (a built-in C module?)")
    excluded: list[str] = []
    if name == "hardy" and paths is not None:
        excluded = [os.path.join(path, file) for path in paths for file in _HARDY_EXEMPT]
    return found, excluded


def defer_timeouts_in(*modules: ModuleType | str) -> None:
    """Let no sync deadline interrupt code of these modules; it waits until the thread leaves them.

    For a library whose own code takes locks by hand (``lock.acquire()``
    then ``try:``), so that a timeout landing in between would leave the
    lock held. A package covers all its submodules; a name is looked up
    without importing the module. The standard library's threading,
    logging, queue, concurrent.futures, asyncio, importlib, contextlib,
    multiprocessing, tempfile and weakref code, and hardy's own, are
    deferred already.

    Example::

        import hardy

        hardy.defer_timeouts_in("mylib", "otherlib.pool")
    """
    found: list[tuple[str, ModuleSpec | None]] = []
    for module in modules:
        if isinstance(module, ModuleType):
            found.append((module.__name__, module.__spec__))
        elif isinstance(module, str):
            if not module:
                raise ValueError("modules must not hold an empty module name")
            try:
                found.append((module, importlib.util.find_spec(module)))
            except (ImportError, ValueError) as exc:
                raise ValueError(f"modules: cannot find module {module!r}: {exc}") from exc
        else:
            raise TypeError(f"modules must be modules or module names, got {module!r} ({type(module).__name__})")
    covered = [_prefixes(name, spec) for name, spec in found]
    with _lock:
        for prefixes, excluded in covered:
            rules.extend(rule for rule in prefixes if rule not in rules)
            exempt.update(excluded)
        verdicts.clear()


def deferred(filename: str) -> bool:
    """Whether code from ``filename`` is in a deferred module."""
    verdict = verdicts.get(filename)
    if verdict is None:
        verdict = filename not in exempt and filename.startswith(tuple(rules))
        verdicts[filename] = verdict
    return verdict


def handling(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether ``exc`` (what a thread handles) is a ``kind``, or was raised while handling one."""
    for _ in range(_CONTEXT_DEPTH):
        if exc is None:
            return False
        if isinstance(exc, kind):
            return True
        exc = exc.__context__
    return False


def snapshot() -> tuple[Mapping[int, FrameType], Mapping[int, Any]]:
    """Every thread's innermost frame and the exception it handles, for :func:`verdict`."""
    return sys._current_frames(), sys._current_exceptions()


def verdict(thread: int, seen: tuple[Mapping[int, FrameType], Mapping[int, Any]], kind: type[BaseException]) -> int:
    """FREE, UNSAFE or HANDLING for ``thread``, from a :func:`snapshot`."""
    frames, exceptions = seen
    frame = frames.get(thread)
    if frame is not None and deferred(frame.f_code.co_filename):
        return UNSAFE
    handled = exceptions.get(thread)
    if isinstance(handled, tuple):  # Python 3.10 and 3.11 give (type, value, traceback)
        handled = handled[1]
    return HANDLING if handling(handled, kind) else FREE


defer_timeouts_in(*DEFAULT_MODULES)
