"""What a sync timeout promises beyond "it interrupts": every guarantee of
``docs/fallback-and-timeout.md``, on both cores (the fixture runs each test
twice). Probes that fork run in a subprocess.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import itertools
import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pytest

import hardy
from hardy import _deadlines, _safe_points

from .probes import run_python


def busy(seconds: float) -> str:
    """Spin in Python code for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "finished"


def free_from_another_thread(lock: Any) -> bool:
    """Whether another thread can take ``lock`` within a second (an RLock is re-entrant for its owner)."""
    got: list[bool] = []

    def take() -> None:
        acquired = lock.acquire(timeout=1.0)
        got.append(acquired)
        if acquired:
            lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(5.0)
    return got == [True]


@contextlib.contextmanager
def held_for(lock: Any, seconds: float) -> Iterator[None]:
    """Hold ``lock`` in another thread for ``seconds``, starting now."""
    taken = threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait(5.0)
    try:
        yield
    finally:
        thread.join(5.0)


@pytest.fixture
def quiet_hardy_logger() -> Iterator[None]:
    # Every timeout logs a WARNING; the stress tests make hundreds.
    logger = logging.getLogger("hardy")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


# -- 1. the timer comes back --------------------------------------------------------------


def test_the_timer_comes_back_after_it_exited_for_idleness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_deadlines, "IDLE_EXIT", 0.05)
    wrapped = hardy.timeout(0.05)(busy)
    with pytest.raises(hardy.TimeoutError):
        wrapped(5.0)
    give_up = time.monotonic() + 5.0
    while _deadlines.timer_thread() is not None and time.monotonic() < give_up:
        time.sleep(0.01)
    assert _deadlines.timer_thread() is None
    started = time.monotonic()
    with pytest.raises(hardy.TimeoutError):
        wrapped(5.0)
    assert time.monotonic() - started < 4.0


# -- 2. forked children ---------------------------------------------------------------------


def test_timeouts_fire_in_a_child_forked_while_the_timer_runs(core: ModuleType) -> None:
    result = run_python(
        core,
        """
        import multiprocessing, time
        from hardy import _deadlines

        def busy(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass

        def child(answers):
            try:
                hardy.timeout(0.05)(busy)(5.0)
                answers.put("ran to completion")
            except hardy.TimeoutError:
                answers.put("timed out")

        hardy.timeout(1.0)(busy)(0.01)
        assert _deadlines.timer_thread() is not None
        context = multiprocessing.get_context("fork")
        answers = context.Queue()
        process = context.Process(target=child, args=(answers,))
        process.start()
        print(answers.get(timeout=20))
        process.join(20)
        """,
    )
    assert result.stdout.strip() == "timed out", result.stderr


def test_a_deadline_running_across_fork_fires_in_the_child(core: ModuleType) -> None:
    result = run_python(
        core,
        """
        import os, time

        def busy(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass

        parent = os.getpid()

        @hardy.timeout(0.3)
        def forks_then_works():
            pid = os.fork()
            busy(5.0)
            return pid

        started = time.monotonic()
        try:
            forks_then_works()
            outcome = "ran to completion"
        except hardy.TimeoutError:
            outcome = "timed out"
        if os.getpid() != parent:
            os._exit(0 if outcome == "timed out" and time.monotonic() - started < 4 else 1)
        _, status = os.wait()
        print(outcome, os.waitstatus_to_exitcode(status))
        """,
    )
    assert result.stdout.split() == ["timed", "out", "0"], result.stderr


# -- 3. no late results ----------------------------------------------------------------------


def test_a_call_that_returns_after_its_deadline_times_out() -> None:
    # sum() over a range is one C call that holds the GIL: the timer cannot
    # even run, let alone interrupt it. The clock on the way out decides.
    total = hardy.timeout(0.01)(sum)
    started = time.monotonic()
    with pytest.raises(hardy.TimeoutError):
        total(range(30_000_000))
    assert time.monotonic() - started > 0.01


def test_no_late_results_while_busy_threads_starve_the_timer(quiet_hardy_logger: None) -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            busy(0.001)

    spinners = [threading.Thread(target=spin) for _ in range(8)]
    for thread in spinners:
        thread.start()
    outcomes: list[str] = []
    try:
        wrapped = hardy.timeout(0.01)(busy)
        for index in range(12):
            try:
                outcomes.append(wrapped(0.03 + 0.0025 * index))
            except hardy.TimeoutError:
                outcomes.append("timed out")
    finally:
        stop.set()
        for thread in spinners:
            thread.join()
    assert outcomes == ["timed out"] * 12


def test_a_swallowed_deadline_never_returns_a_value_as_if_in_time() -> None:
    @hardy.timeout(0.05)
    def swallows() -> str:
        with contextlib.suppress(BaseException):  # the deadline itself, swallowed
            busy(5.0)
        return "value"

    with pytest.raises(hardy.TimeoutError):
        swallows()


def test_the_function_s_own_error_still_propagates_after_its_deadline() -> None:
    # One C call that runs past the deadline (holding the GIL) and then
    # fails: the failure is the call's own answer, and it is kept.
    total = hardy.timeout(0.01)(sum)
    with pytest.raises(TypeError, match="unsupported operand"):
        total(itertools.chain(itertools.repeat(1, 30_000_000), ["not a number"]))


# -- 4. never inside the standard library's critical sections ---------------------------------


class _NullHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        pass


@pytest.fixture
def probe_logger() -> Iterator[tuple[logging.Logger, logging.Handler]]:
    handler = _NullHandler()
    logger = logging.getLogger("hardy-tests.probe")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_a_deadline_never_lands_between_a_logging_handler_s_acquire_and_its_try(
    probe_logger: tuple[logging.Logger, logging.Handler], quiet_hardy_logger: None
) -> None:
    logger, handler = probe_logger

    @hardy.timeout(0.05)
    def logs_then_works() -> None:
        logger.warning("waits in Handler.acquire() until the holder lets go")
        busy(5.0)

    with held_for(handler.lock, 0.2), pytest.raises(hardy.TimeoutError):
        # The deadline passes while the call waits in logging's own code.
        logs_then_works()
    assert free_from_another_thread(handler.lock)


def test_a_deadline_never_lands_inside_a_queue_s_mutex(quiet_hardy_logger: None) -> None:
    jobs: queue.Queue[int] = queue.Queue()

    @hardy.timeout(0.05)
    def puts_then_works() -> None:
        jobs.put(1)  # waits in Condition.__enter__ until the holder lets go
        busy(5.0)

    with held_for(jobs.mutex, 0.2), pytest.raises(hardy.TimeoutError):
        puts_then_works()
    assert free_from_another_thread(jobs.mutex)
    assert jobs.get_nowait() == 1


@pytest.fixture
def own_rules() -> Iterator[None]:
    # defer_timeouts_in() changes process-wide lists that the compiled core
    # reads in place: restore their contents, not the objects.
    rules, exempt = list(_safe_points.rules), set(_safe_points.exempt)
    yield
    _safe_points.rules[:] = rules
    _safe_points.exempt.clear()
    _safe_points.exempt.update(exempt)
    _safe_points.verdicts.clear()


def test_defer_timeouts_in_protects_a_library_s_own_critical_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_rules: None, quiet_hardy_logger: None
) -> None:
    (tmp_path / "lockstep.py").write_text(
        "import threading, time\n"
        "lock = threading.Lock()\n"
        "def critical():\n"
        "    lock.acquire()\n"
        "    end = time.monotonic() + 0.1\n"
        "    while time.monotonic() < end:  # the window: the lock is held, no try yet\n"
        "        pass\n"
        "    try:\n"
        "        pass\n"
        "    finally:\n"
        "        lock.release()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    lockstep = importlib.import_module("lockstep")
    monkeypatch.delitem(sys.modules, "lockstep")
    hardy.defer_timeouts_in(lockstep)

    @hardy.timeout(0.02)
    def uses_the_library() -> None:
        lockstep.critical()
        busy(5.0)

    with pytest.raises(hardy.TimeoutError):
        uses_the_library()
    assert free_from_another_thread(lockstep.lock)


@pytest.mark.parametrize(
    ("modules", "error", "match"),
    [
        ((42,), TypeError, "modules must be modules or module names, got 42"),
        (("",), ValueError, "empty module name"),
        (("hardy_no_such_module",), ValueError, "no module named 'hardy_no_such_module'"),
        ((sys,), ValueError, "module 'sys' has no Python code"),
    ],
)
def test_defer_timeouts_in_refuses_what_it_cannot_protect(modules: tuple[Any, ...], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        hardy.defer_timeouts_in(*modules)


def test_a_timeout_around_retries_lands_in_the_retry_sleep() -> None:
    # hardy's own modules are deferred, but not the sleep between retries: a
    # deadline that passes during that sleep is raised as the sleep returns,
    # not after the next attempts (a sleep is one C call; it finishes first).
    attempts = 0

    @hardy.timeout(0.05)
    @hardy.retry(max_attempts=4, initial_delay=0.4, backoff_factor=1.0, jitter=False)
    def flaky() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError

    with pytest.raises(hardy.TimeoutError):
        flaky()
    assert attempts == 1


def _verdict(core: ModuleType, thread: int) -> int:
    """What the core under test's timer would do to ``thread`` now."""
    if core.IMPLEMENTATION == "c":
        (compiled,) = [registry for registry in _deadlines._registries if hasattr(registry, "verdict")]
        return int(compiled.verdict(thread))
    return _safe_points.verdict(thread, _safe_points.snapshot(), _deadlines.Expired)


def test_what_the_timer_sees_of_a_thread(core: ModuleType) -> None:
    phase = {"now": "parked"}
    parked = threading.Event()
    moved = threading.Event()

    def spin_until(name: str) -> None:
        moved.set()
        while phase["now"] == name:
            pass

    def target() -> None:
        parked.set()
        while phase["now"] == "parked":
            time.sleep(0.001)  # re-checked below while it waits in threading code instead
            if parked.is_set():
                threading.Event().wait(0.05)
        spin_until("spinning")
        try:
            raise _deadlines.Expired
        except BaseException:
            spin_until("handling")

    thread = threading.Thread(target=target)
    thread.start()
    parked.wait(5.0)
    assert thread.ident is not None
    give_up = time.monotonic() + 5.0
    while _verdict(core, thread.ident) != _safe_points.UNSAFE and time.monotonic() < give_up:
        time.sleep(0.001)
    assert _verdict(core, thread.ident) == _safe_points.UNSAFE  # inside threading.Event.wait
    moved.clear()
    phase["now"] = "spinning"
    moved.wait(5.0)
    assert _verdict(core, thread.ident) == _safe_points.FREE  # in this file's own loop
    moved.clear()
    phase["now"] = "handling"
    moved.wait(5.0)
    assert _verdict(core, thread.ident) == _safe_points.HANDLING  # in an except clause of the deadline
    phase["now"] = "done"
    thread.join(5.0)


# -- 5. cleanup runs to its end ------------------------------------------------------------


def test_cleanup_in_finally_runs_to_its_end() -> None:
    cleaned: list[str] = []

    @hardy.timeout(0.05)
    def tidy() -> None:
        try:
            busy(5.0)
        finally:
            busy(0.15)  # longer than several re-delivery intervals
            cleaned.append("finally")

    with pytest.raises(hardy.TimeoutError):
        tidy()
    assert cleaned == ["finally"]


def test_cleanup_in_except_and_exit_runs_to_its_end() -> None:
    cleaned: list[str] = []

    class Resource:
        def __enter__(self) -> Resource:
            return self

        def __exit__(self, *exc: object) -> None:
            busy(0.15)
            cleaned.append("__exit__")

    @hardy.timeout(0.05)
    def guarded() -> None:
        try:
            with Resource():
                busy(5.0)
        except BaseException:
            try:
                raise RuntimeError("a cleanup step that fails and is handled")
            except RuntimeError:
                busy(0.1)  # still handling the deadline: its context is the deadline
            cleaned.append("except")
            raise

    with pytest.raises(hardy.TimeoutError):
        guarded()
    assert cleaned == ["__exit__", "except"]


class _Collected:
    """An object whose finaliser and gc callbacks spin in their own frame (the rule looks at the innermost one)."""

    def __init__(self, ran: list[str]) -> None:
        self.ran = ran

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                pass
            self.ran.append("method callback")

    def __del__(self) -> None:
        end = time.monotonic() + 0.05
        while time.monotonic() < end:
            pass
        self.ran.append("__del__")


@pytest.mark.parametrize("where", ["function callback", "method callback", "__del__"])
def test_a_deadline_waits_while_a_finaliser_or_gc_callback_runs(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The interpreter ignores an exception raised in a __del__ method or a
    # gc callback ("Exception ignored in ..."): a deadline delivered there
    # would interrupt the user's callback, print a warning and be lost. It
    # waits until the thread is back in the timed code instead.
    ran: list[str] = []
    ignored: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    holder = _Collected(ran)

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                pass
            ran.append("function callback")

    callback = {"function callback": on_gc, "method callback": holder.on_gc}.get(where)

    @hardy.timeout(0.01)
    def timed() -> str:
        if callback is None:
            _Collected(ran)  # dropped at once: its __del__ runs here
        else:
            gc.collect()
        return busy(2.0)

    if callback is not None:
        gc.callbacks.append(callback)
    try:
        with pytest.raises(hardy.TimeoutError):
            timed()
    finally:
        if callback is not None:
            gc.callbacks.remove(callback)
    assert ran == [where]
    assert ignored == []


def test_a_call_that_swallows_the_deadline_and_keeps_running_gets_it_again() -> None:
    swallowed = 0

    @hardy.timeout(0.05)
    def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                busy(5.0)
            except BaseException:
                swallowed += 1
                if swallowed == 3:
                    raise  # the third delivery is let through

    started = time.monotonic()
    with pytest.raises(hardy.TimeoutError):
        stubborn()
    assert swallowed == 3
    assert time.monotonic() - started < 3.0


# -- 6. the private exception never escapes ----------------------------------------------------


def test_the_private_exception_never_escapes_even_when_bookkeeping_is_paused(quiet_hardy_logger: None) -> None:
    # A profile hook that pauses on the way out of the deadline registry's
    # functions gives the timer every chance to deliver inside hardy's own
    # code, just after it released its lock.
    registry_file = _deadlines.__file__

    def pause(frame: FrameType, event: str, arg: object) -> None:
        if event == "return" and frame.f_code.co_filename == registry_file:
            time.sleep(0.002)

    escaped = 0
    timed_out = 0
    wrapped = hardy.timeout(0.001)(busy)
    for i in range(60):
        try:
            sys.setprofile(pause)
            try:
                # Half the calls finish near the deadline (the compiled registry runs no Python
                # the hook could pause), half run well past it: those time out on either core.
                wrapped(0.0005 if i % 2 else 0.01)
            except hardy.TimeoutError:
                timed_out += 1
            finally:
                sys.setprofile(None)
            busy(0.001)  # a late delivery would surface here
        except _deadlines.Expired:
            escaped += 1
    assert escaped == 0
    assert timed_out > 0


# -- 7. generators ---------------------------------------------------------------------------


def test_generator_functions_are_refused_at_decoration() -> None:
    def numbers() -> Iterator[int]:
        yield 1

    async def stream() -> Any:
        yield 1

    with pytest.raises(TypeError, match="it is a generator function"):
        hardy.timeout(1.0)(numbers)
    with pytest.raises(TypeError, match="it is an async generator function"):
        hardy.timeout(1.0)(stream)
    with pytest.raises(TypeError, match="generator function"):
        hardy.timeout(1.0, mode="thread")(numbers)

    def makes_a_list() -> list[int]:
        return list(numbers())

    assert hardy.timeout(1.0)(makes_a_list)() == [1]


# -- logging and naming ----------------------------------------------------------------------


def test_a_timeout_logs_one_warning_and_a_fallback_one_info(caplog: pytest.LogCaptureFixture) -> None:
    def slow() -> str:
        return busy(5.0)

    caplog.set_level(logging.INFO, logger="hardy")
    with pytest.raises(hardy.TimeoutError) as info:
        hardy.timeout(0.01)(slow)()
    # The qualified name from the innermost enclosing function: no "test_...<locals>." path.
    assert info.value.operation == "slow"
    assert str(info.value) == "Operation 'slow' timed out after 0.01s"
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("hardy.timeout", "WARNING", str(info.value)),
    ]
    caplog.clear()
    assert hardy.timeout(0.01, error_message="slow", fallback=lambda: "cached")(slow)() == "cached"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Operation 'slow' timed out after 0.01s"),
        ("INFO", "Operation 'slow' timed out; its fallback answered"),
    ]


# -- the bounded stress test -------------------------------------------------------------------


def test_near_deadline_calls_in_many_threads_leave_nothing_behind(
    probe_logger: tuple[logging.Logger, logging.Handler], quiet_hardy_logger: None
) -> None:
    logger, handler = probe_logger
    jobs: queue.Queue[int] = queue.Queue()
    escaped: list[BaseException] = []
    late: list[tuple[float, float]] = []
    calls = [0]
    stop_at = time.monotonic() + 1.5

    def work(seconds: float) -> tuple[float, float]:
        started = time.monotonic()
        end = started + seconds
        while time.monotonic() < end:
            logger.info("tick")  # into logging's handler lock, again and again
            jobs.put(1)
            jobs.get()
        return started, time.monotonic()

    def worker(seed: int) -> None:
        limits = [0.000001, 0.0001, 0.0005, 0.001, 0.002, 0.003]
        for index in range(400):
            if time.monotonic() > stop_at:
                return
            limit = limits[(seed + index) % len(limits)]
            try:
                try:
                    started, ended = hardy.timeout(limit)(work)(limit * (0.5 + (index % 3) * 0.5))
                    if ended - started >= limit:
                        late.append((limit, ended - started))
                except hardy.TimeoutError:
                    pass
                calls[0] += 1
            except _deadlines.Expired as exc:
                escaped.append(exc)

    logger.setLevel(logging.INFO)
    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(6)]
    # Other libraries' gc callbacks (Hypothesis installs one) run inside the
    # timed calls whenever a collection happens there: deadlines wait them out.
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    assert escaped == []
    assert late == []
    assert free_from_another_thread(handler.lock)
    assert free_from_another_thread(jobs.mutex)
    assert calls[0] > 100


def test_a_cancelled_delivery_leaves_profilers_and_tracers_working(core: ModuleType) -> None:
    # The deadline fires during one C call, which then returns: its pending
    # delivery is cancelled. On CPython 3.10 and 3.11, cancelling the usual
    # way left the interpreter's async-exception signal set for good, and on
    # 3.11 the next profiled or traced function then looped for ever.
    result = run_python(
        core,
        """
        import sys, time

        try:
            hardy.timeout(0.01)(time.sleep)(0.05)
        except hardy.TimeoutError:
            pass

        def hook(frame, event, arg):
            return hook

        def profiled():
            return "ran"

        sys.setprofile(hook)
        first = profiled()
        sys.setprofile(None)
        sys.settrace(hook)
        second = profiled()
        sys.settrace(None)
        print(first, second)
        """,
        timeout=30,
    )
    assert result.stdout.split() == ["ran", "ran"], result.stderr
