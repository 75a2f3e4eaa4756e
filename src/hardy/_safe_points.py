"""Where a sync deadline may interrupt a thread, and where it must wait.

A deadline is delivered as an exception raised inside the running thread. An
exception raised between ``lock.acquire()`` and the ``try:`` that releases the
lock leaves the lock held for ever; the standard library has such windows
(``logging.Handler.handle``, ``threading.Condition.__enter__``, which
``queue.Queue`` uses, ``concurrent.futures``, ``importlib``'s module locks).
So at fire time the timer looks at the target thread's innermost Python frame
and, while it runs code of one of the modules below, waits a short tick and
looks again: the exception lands only once the thread is back in other code.

Nor is it delivered while the thread runs a trace or profile function (a
debugger, a coverage tool, a profiler written in Python): an exception there
unsets the user's tracer, and on CPython 3.11 it can send the interpreter
into an endless loop. Nor while its innermost frame is a ``__del__`` method
or a ``gc.callbacks`` function: the interpreter ignores any exception raised
there (it prints "Exception ignored in ..." and goes on), so the deadline
waits, as at a deferred module, until the thread is back in the timed code.

The timer also looks at what the thread is handling: while the deadline's own
exception is being handled (an ``except``, ``finally`` or ``__exit__`` that it
is propagating through), it is not delivered again, so cleanup runs to its end.

Both cores take their decisions from the data here: the twin through
:func:`verdict`, the compiled core by reading :data:`rules`, :data:`exempt`
and :data:`verdicts` directly, in C, so that looking and delivering form one
step that no other thread can interleave.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import os
import struct
import sys
import threading
from collections.abc import Mapping
from importlib.machinery import ModuleSpec
from types import CodeType, FrameType, FunctionType, MethodType, ModuleType
from typing import Any

from .policies.deadlines import FREE, HANDLING, UNSAFE

__all__ = [
    "DEFAULT_MODULES",
    "FREE",
    "HANDLING",
    "UNSAFE",
    "defer_timeouts_in",
    "deferred",
    "exempt",
    "finalising",
    "gc_callbacks",
    "handling",
    "rules",
    "snapshot",
    "thread_state",
    "verdict",
    "verdicts",
]

# The verdicts, defined with the policy that decides from them
# (hardy.policies.deadlines): FREE, deliver now; UNSAFE, the innermost frame
# is in a deferred module, look again after a short tick; HANDLING, the
# thread is handling the deadline's exception, do not deliver it again.

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

# The collector's own list (rebinding ``gc.callbacks`` would not replace it).
gc_callbacks: list[Any] = gc.callbacks

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


def finalising(code: CodeType) -> bool:
    """Whether ``code`` is a finaliser's or a gc callback's, whose exceptions the interpreter ignores."""
    if code.co_name == "__del__":
        return True
    # Only type checks and slot reads: no user code runs in the timer thread.
    for callback in list(gc_callbacks):
        function = callback.__func__ if isinstance(callback, MethodType) else callback
        if isinstance(function, FunctionType) and function.__code__ is code:
            return True
    return False


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


def verdict(
    thread: int,
    seen: tuple[Mapping[int, FrameType], Mapping[int, Any]],
    kind: type[BaseException],
    state: int = 0,
) -> int:
    """FREE, UNSAFE or HANDLING for ``thread``, from a :func:`snapshot`.

    ``state`` is the address of the thread's ``PyThreadState``
    (:func:`thread_state`, read by that thread itself), or 0 if unknown.
    """
    if state and _TRACING_OFFSET >= 0 and ctypes.c_int.from_address(state + _TRACING_OFFSET).value:
        return UNSAFE
    frames, exceptions = seen
    frame = frames.get(thread)
    if frame is not None and (deferred(frame.f_code.co_filename) or finalising(frame.f_code)):
        return UNSAFE
    handled: BaseException | tuple[object, BaseException | None, object] | None = exceptions.get(thread)
    if isinstance(handled, tuple):  # Python 3.10 and 3.11 give (type, value, traceback)
        handled = handled[1]
    return HANDLING if handling(handled, kind) else FREE


# -- is a thread inside a trace function? ----------------------------------------------------
# The compiled core reads ``PyThreadState.tracing`` in C. The twin finds the
# same field through ctypes: its offset is not part of any API, so it is
# measured once, here, on this thread (0 outside a trace function, 1 inside
# ``PyThreadState_EnterTracing``), and used only if exactly one int field
# behaves so. Otherwise the twin cannot tell, and says so in the docs.

_api = ctypes.pythonapi
_api.PyThreadState_Get.restype = ctypes.c_void_p
_api.PyThreadState_Get.argtypes = ()
_PROBE_BYTES = 512


def thread_state() -> int:
    """The address of the calling thread's ``PyThreadState`` (valid while the thread lives)."""
    return int(_api.PyThreadState_Get())


def _inside_a_profile_function(state: int) -> bytes | None:
    # Python 3.10 has no PyThreadState_EnterTracing: look from inside a
    # profile function, which only this thread sees, if none is set already.
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return None
    seen: list[bytes] = []

    def look(frame: FrameType, event: str, arg: object) -> None:
        if not seen:
            seen.append(ctypes.string_at(state, _PROBE_BYTES))

    sys.setprofile(look)
    try:
        _nothing()
    finally:
        sys.setprofile(None)
    return seen[0] if seen else None


def _nothing() -> None:
    pass


def _measure_tracing_offset() -> int:
    if sys.implementation.name != "cpython":
        return -1
    state = thread_state()
    enter = getattr(_api, "PyThreadState_EnterTracing", None)  # CPython 3.11+
    leave = getattr(_api, "PyThreadState_LeaveTracing", None)
    before = ctypes.string_at(state, _PROBE_BYTES)
    if enter is None or leave is None:
        inside = _inside_a_profile_function(state)
        if inside is None:
            return -1
    else:
        enter.argtypes = leave.argtypes = (ctypes.c_void_p,)
        enter.restype = leave.restype = None
        enter(state)
        try:
            inside = ctypes.string_at(state, _PROBE_BYTES)
        finally:
            leave(state)
    after = ctypes.string_at(state, _PROBE_BYTES)
    found = [
        offset
        for offset in range(0, _PROBE_BYTES - 3, 4)
        if struct.unpack_from("i", before, offset)[0] == 0
        and struct.unpack_from("i", inside, offset)[0] == 1
        and struct.unpack_from("i", after, offset)[0] == 0
    ]
    return found[0] if len(found) == 1 else -1


_TRACING_OFFSET = _measure_tracing_offset()
defer_timeouts_in(*DEFAULT_MODULES)
