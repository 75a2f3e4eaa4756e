"""Argument checks shared by both cores and the public API.

Every check raises at the point of the mistake with a message that names the
parameter and the value received, so a bad configuration never turns into a
silent default.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, TypeGuard, cast

from ._settings import BreakerSettings, BulkheadSettings, RateLimiterSettings, RetryBudgetSettings, RetrySettings
from ._wrapping import is_async_callable
from .errors import CircuitOpenError
from .jitter import Jitter
from .policies import retry as retry_policy
from .store import BreakerStore

__all__ = [
    "ALREADY_INITIALISED",
    "NOT_A_LISTENER",
    "UNPICKLABLE_BREAKER",
    "breaker_settings",
    "callable_arg",
    "clock_arg",
    "clock_reading",
    "initialised",
    "random_reading",
    "rebuild",
    "exception_types",
    "non_empty_name",
    "positive_int",
    "retry_settings",
    "seconds",
]

# Counts that live in 32-bit C fields in the compiled core.
_INT32_MAX = 2**31 - 1


def positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) in ``[minimum, 2**31 - 1]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if not minimum <= value <= _INT32_MAX:
        raise ValueError(f"{name} must be between {minimum} and {_INT32_MAX}, got {_show(value)}")
    return value


def _show(value: object) -> str:
    """``repr(value)``, but an int too long to print is shown by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an int of {value.bit_length()} bits"
    return repr(value)


def _as_float(name: str, value: object, what: str) -> float:
    """``value`` as a float: an ``int`` or ``float``, not a ``bool``, that a float can hold."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    try:
        return float(value)
    except OverflowError:
        # An int too large for a float (10**400) is out of range, not an arithmetic error.
        raise ValueError(f"{name} must be a finite number, got {_show(value)}") from None


def seconds(name: str, value: object, *, allow_zero: bool = True) -> float:
    """Return ``value`` as a float of seconds; it must be finite and ``>= 0`` (or ``> 0``)."""
    result = _as_float(name, value, "a number of seconds")
    if not math.isfinite(result) or result < 0.0 or (result == 0.0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return result


def callable_arg(name: str, value: object) -> Callable[..., Any]:
    """Return ``value`` if it is callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r} ({type(value).__name__})")
    return value


# An exception specification: classes and predicates on the exception, in order (hardy._match).
ExceptionSpec = tuple[type[BaseException] | Callable[[BaseException], object], ...]


def exception_types(name: str, value: object) -> ExceptionSpec:
    """Normalise an exception class or predicate, or a tuple or list of them, to a tuple.

    ``None`` means "none". A predicate is any callable that is not a class
    (``Callable[[BaseException], bool]``, see :mod:`hardy._match`). Anything
    else is refused here, because ``isinstance`` would otherwise fail only
    when the first error arrives, long after the mistake; so are other
    containers: a dict would give its keys, a set or a generator has no
    order to show in ``repr`` and comparisons, and a one-shot iterator would
    be consumed by the check.
    """
    if value is None:
        return ()
    if isinstance(value, (tuple, list)):
        items = cast("Sequence[object]", value)  # isinstance() leaves the elements unknown
        return tuple(_exception_element(name, item, items) for item in items)
    if _is_exception_class(value):
        return (value,)
    if callable(value) and not isinstance(value, type):
        return (value,)
    raise TypeError(
        f"{name} must be an exception class or a predicate, or a tuple or list of them, "
        f"got {value!r} ({type(value).__name__}){_container_hint(value)}"
    )


def _exception_element(
    name: str, item: object, container: object
) -> type[BaseException] | Callable[[BaseException], object]:
    # One element of an exception tuple: a class, or a predicate on the exception.
    if _is_exception_class(item):
        return item
    if not isinstance(item, type) and callable(item):
        return cast("Callable[[BaseException], object]", item)
    raise TypeError(
        f"{name} must hold exception classes, got {item!r} ({type(item).__name__}) in {container!r} "
        "(an element may also be a predicate: a callable taking the exception)"
    )


def result_predicate(name: str, value: object) -> Callable[[Any], object] | None:
    """``value`` if it is ``None`` or a callable (a predicate on a returned value).

    An exception class is refused: it is callable, but passing one here is
    a mix-up with the exception parameters.
    """
    if value is None:
        return None
    if _is_exception_class(value) or not callable(value):
        raise TypeError(f"{name} must be a callable taking the returned value, or None, got {value!r}")
    return cast("Callable[[Any], object]", value)


def _is_exception_class(value: object) -> TypeGuard[type[BaseException]]:
    # A TypeGuard, not two narrowing checks: the error messages after a
    # refusal see ``value`` as the object it was, not as ``type[Unknown]``.
    return isinstance(value, type) and issubclass(value, BaseException)


def _container_hint(value: object) -> str:
    if isinstance(value, (str, bytes)):
        return ": a string is not an exception class"
    if isinstance(value, Mapping):
        return ": a mapping is not a list of exception classes"
    if isinstance(value, AbstractSet):
        return ": a set has no order; pass a tuple"
    if isinstance(value, Iterable):
        return ": pass a tuple"
    return ""


def non_empty_name(name: object, parameter: str = "name") -> str:
    """``name`` as a plain ``str`` if it is a non-empty one: ``TypeError`` for another type, ``ValueError`` if empty.

    A ``str`` subclass (a ``StrEnum`` member, say) is taken as its plain text,
    on both cores: the compiled ones keep names in C-typed ``str`` fields.
    """
    if not isinstance(name, str):
        raise TypeError(f"{parameter} must be a str, got {name!r} ({type(name).__name__})")
    if not name:
        raise ValueError(f"{parameter} must not be empty")
    return str.__str__(name)  # the text itself, whatever the subclass's __str__ says


def clock_arg(name: str, clock: object) -> Callable[[], float]:
    """``clock`` if it is callable and its first reading is a finite number of seconds.

    It is called once here so that a broken clock is reported at
    construction; an exception it raises propagates unchanged. The default
    clock, :func:`time.monotonic`, is not probed.
    """
    reader = callable_arg(name, clock)
    if reader is time.monotonic:
        return time.monotonic
    first = _reading(name, clock, reader())
    second = _reading(name, clock, reader())
    if second < first:
        raise ValueError(f"{name} must not go backwards, but it read {first!r} and then {second!r} ({clock!r})")
    return reader


def _reading(name: str, clock: object, reading: object) -> float:
    if isinstance(reading, bool) or not isinstance(reading, numbers.Real):
        raise TypeError(
            f"{name} must return a number of seconds, got {reading!r} ({type(reading).__name__}) from {clock!r}"
        )
    try:
        value = float(reading)
    except OverflowError:  # an int beyond a float's range
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{name} must return a finite number of seconds, got {_show(reading)} from {clock!r}")
    return value


def clock_reading(clock: object, reading: object) -> float:
    """A reading of a breaker's or retry's ``clock`` as a float; an error if it is not a finite number.

    The cores call this for every reading that is not a finite ``float``
    (the fast path checks those itself), so both give the same errors.
    """
    return _reading("clock", clock, reading)


def random_reading(random: object, value: object) -> float:
    """A draw of a retry's ``random`` source as a float in ``[0, 1)``; an error otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"random must return a float in [0, 1), got {value!r} ({type(value).__name__}) from {random!r}")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not 0.0 <= result < 1.0:
        raise ValueError(f"random must return a float in [0, 1), got {_show(value)} from {random!r}")
    return result


# Messages both cores give, word for word.
ALREADY_INITIALISED = "{kind} {obj!r} is already initialised: make a new one instead of calling __init__ again"
NOT_A_LISTENER = "{callback!r} is not a listener of {breaker!r}"
UNPICKLABLE_BREAKER = "cannot pickle {breaker!r}: a circuit breaker's state belongs to its process"


def initialised(obj: object, done: bool) -> None:
    """Raise if ``obj`` (made with ``__new__`` alone) was never initialised."""
    if not done:
        raise TypeError(f"{type(obj).__name__} was made without calling __init__: it cannot be used")


def rebuild(cls: Callable[..., Any], settings: dict[str, Any]) -> Any:
    """``cls(**settings)``: how a pickled configuration is made again."""
    return cls(**settings)


def breaker_settings(
    name: object,
    failure_threshold: object,
    reset_timeout: object,
    half_open_max_calls: object,
    excluded_exceptions: object,
    clock: object,
    *,
    failure_exceptions: object = None,
    failure_on_result: object = None,
    success_threshold: object = None,
    half_open_max_wait: object = None,
    reset_backoff: object = 1.0,
    max_reset_timeout: object = None,
    window: object = None,
) -> BreakerSettings:
    """Check a circuit breaker's settings and return them normalised."""
    failures: ExceptionSpec | None = None
    if failure_exceptions is not None:
        failures = exception_types("failure_exceptions", failure_exceptions)
        _outcome_classes("failure_exceptions", failures)
    timeout = seconds("reset_timeout", reset_timeout)
    max_calls = positive_int("half_open_max_calls", half_open_max_calls)
    successes = 0  # not given: half_open_max_calls, or a window's rates judge the trials
    if success_threshold is not None:
        successes = positive_int("success_threshold", success_threshold)
        if successes > max_calls:
            raise ValueError(
                f"success_threshold must be <= half_open_max_calls ({max_calls}), got {success_threshold!r}: "
                "a trial keeps its slot, so more successes than slots could never close the circuit"
            )
        if successes == max_calls and window is None:
            successes = 0  # without a window, the default's own number decides as none given
    max_wait = 0.0
    if half_open_max_wait is not None:
        max_wait = seconds("half_open_max_wait", half_open_max_wait, allow_zero=False)
    backoff = _finite("reset_backoff", reset_backoff)
    if backoff < 1.0:
        raise ValueError(f"reset_backoff must be >= 1, got {reset_backoff!r}")
    cap = NO_CAP
    if max_reset_timeout is not None:
        cap = seconds("max_reset_timeout", max_reset_timeout)
        if cap < timeout:
            raise ValueError(
                f"max_reset_timeout must be >= reset_timeout ({reset_timeout!r}), got {max_reset_timeout!r}"
            )
    return BreakerSettings(
        name=non_empty_name(name),
        failure_threshold=positive_int("failure_threshold", failure_threshold),
        reset_timeout=timeout,
        half_open_max_calls=max_calls,
        excluded_exceptions=exception_types("excluded_exceptions", excluded_exceptions),
        clock=clock_arg("clock", clock),
        failure_exceptions=failures,
        failure_on_result=result_predicate("failure_on_result", failure_on_result),
        success_threshold=successes,
        half_open_max_wait=max_wait,
        reset_backoff=backoff,
        max_reset_timeout=cap,
        tuned=successes != 0 or max_wait > 0.0 or backoff != 1.0 or cap != NO_CAP,
        window=window_arg(window),
    )


# max_reset_timeout=None: the backed-off reset timeout has no cap (the largest float).
NO_CAP = sys.float_info.max


def _outcome_classes(name: str, spec: ExceptionSpec) -> None:
    """The classes of ``spec`` must be ``Exception`` subclasses, and ``spec`` not empty."""
    for kind in spec:
        if isinstance(kind, type) and not issubclass(kind, Exception):
            raise ValueError(
                f"{name} must be Exception subclasses, got {kind.__name__} "
                "(interruptions and cancellations are never an outcome)"
            )
    if not spec:
        raise ValueError(f"{name} must name at least one exception class or predicate (or be None: every error)")


# The cores keep the jitter as the policy's code for it.
_JITTER_CODES = {
    Jitter.NONE: retry_policy.JITTER_NONE,
    Jitter.FULL: retry_policy.JITTER_FULL,
    Jitter.EQUAL: retry_policy.JITTER_EQUAL,
    Jitter.DECORRELATED: retry_policy.JITTER_DECORRELATED,
}


def retry_settings(
    max_attempts: object,
    backoff_factor: object,
    initial_delay: object,
    max_delay: object,
    jitter: object,
    retryable_exceptions: object,
    retry_on_result: object,
    deadline: object,
    random: object,
    clock: object,
    retry_after: object = None,
    sleep: object = None,
    budget: object = None,
) -> RetrySettings:
    """Check a retry configuration and return it normalised."""
    attempts = positive_int("max_attempts", max_attempts)
    factor = _finite("backoff_factor", backoff_factor)
    if factor < 1.0:
        raise ValueError(f"backoff_factor must be >= 1, got {backoff_factor!r}")
    initial = seconds("initial_delay", initial_delay)
    maximum = seconds("max_delay", max_delay)
    if maximum < initial:
        raise ValueError(f"max_delay must be >= initial_delay ({initial_delay!r}), got {max_delay!r}")
    if jitter is True:
        code = _JITTER_CODES[Jitter.FULL]
    elif jitter is False:
        code = _JITTER_CODES[Jitter.NONE]
    elif isinstance(jitter, Jitter):
        code = _JITTER_CODES[jitter]
    else:
        raise TypeError(f"jitter must be a bool or a hardy.Jitter, got {jitter!r} ({type(jitter).__name__})")
    retryable = exception_types("retryable_exceptions", retryable_exceptions)
    predicate = None if retry_on_result is None else callable_arg("retry_on_result", retry_on_result)
    return RetrySettings(
        max_attempts=attempts,
        backoff_factor=factor,
        initial_delay=initial,
        max_delay=maximum,
        jitter=code,
        jitter_given=jitter,
        retryable_exceptions=retryable,
        retry_circuit_open=any(isinstance(kind, type) and issubclass(kind, CircuitOpenError) for kind in retryable),
        retry_on_result=predicate,
        deadline=None if deadline is None else seconds("deadline", deadline, allow_zero=False),
        random=callable_arg("random", random),  # never called here: that would shift a seeded sequence
        clock=clock_arg("clock", clock),
        retry_after=None if retry_after is None else callable_arg("retry_after", retry_after),
        sleep=None if sleep is None else callable_arg("sleep", sleep),
        budget=None if budget is None else retry_budget(budget),
    )


def _finite(name: str, value: object) -> float:
    result = _as_float(name, value, "a number")
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def fallback_exceptions(value: object) -> ExceptionSpec:
    """The error types that fall through to the next function of a chain.

    Only ``Exception`` subclasses: an interruption or a cancellation must
    never be answered by a fallback.
    """
    result = exception_types("exceptions", value)
    for kind in result:
        if isinstance(kind, type) and not issubclass(kind, Exception):
            raise ValueError(
                f"exceptions must be Exception subclasses, got {kind.__name__} "
                "(interruptions and cancellations always propagate)"
            )
    if not result:
        raise ValueError("exceptions must name at least one exception class or predicate")
    return result


def breaker_store(store: object) -> BreakerStore:
    """``store`` if it is a :class:`hardy.store.BreakerStore`, else a ``TypeError``."""
    if not isinstance(store, BreakerStore):
        raise TypeError(f"store must be a hardy.store.BreakerStore such as hardy.RedisStore, got {store!r}")
    return store


def asked_delay(retry_after: object, value: object) -> float:
    """What ``retry_after`` returned, as seconds: a finite number ``>= 0`` (``None`` is handled before).

    A bad value is an error naming the callable, raised where the retry
    would have slept: a date in the past is the caller's to clamp
    (``max(0.0, ...)``), not a silent zero.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"retry_after must return a number of seconds or None, got {_show(value)} "
            f"({type(value).__name__}) from {retry_after!r}"
        )
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result) or result < 0.0:
        raise ValueError(
            f"retry_after must return a finite number >= 0 or None, got {_show(value)} from {retry_after!r}"
        )
    return result


def retry_hooks(func: object, func_is_async: bool, **hooks: object) -> None:
    """Check the hooks of a retried function: callable, and async ones only for an async function."""
    for name, hook in hooks.items():
        if hook is None:
            continue
        callable_arg(name, hook)
        if not func_is_async and is_async_hook(hook):
            raise TypeError(f"{name} {hook!r} is async but {func!r} is not: it could not be awaited")


def is_async_hook(hook: object) -> bool:
    """Whether calling ``hook`` returns a coroutine (as ``hardy._wrapping.is_async_callable``)."""
    return is_async_callable(hook)


def bulkhead_settings(name: object, max_concurrent: object, max_wait: object, clock: object) -> BulkheadSettings:
    """Check a bulkhead's settings and return them normalised."""
    return BulkheadSettings(
        name=non_empty_name(name),
        max_concurrent=positive_int("max_concurrent", max_concurrent),
        max_wait=seconds("max_wait", max_wait),
        clock=clock_arg("clock", clock),
    )


def rate_limiter_settings(
    name: object, rate: object, period: object, burst: object, max_wait: object, clock: object
) -> RateLimiterSettings:
    """Check a rate limiter's settings and return them normalised (``burst=None``: ``rate``, at least 1)."""
    checked_rate = _as_float("rate", rate, "a number of calls")
    if not math.isfinite(checked_rate) or checked_rate <= 0.0:
        raise ValueError(f"rate must be a finite number > 0, got {rate!r}")
    checked_period = seconds("period", period, allow_zero=False)
    default_burst = max(1, min(_INT32_MAX, math.floor(checked_rate)))
    checked_burst = default_burst if burst is None else positive_int("burst", burst)
    return RateLimiterSettings(
        name=non_empty_name(name),
        rate=checked_rate,
        period=checked_period,
        burst=checked_burst,
        max_wait=seconds("max_wait", max_wait),
        clock=clock_arg("clock", clock),
    )


# The budget's window is cut into ten slices counted from its start: at least
# a millisecond keeps that count far inside a C long long for any clock.
MIN_BUDGET_WINDOW = 0.001
MAX_BUDGET_RATIO = 1000.0  # Finagle's bound on percentCanRetry: a thousand retries per call


def retry_budget_settings(ratio: object, min_per_second: object, window: object, clock: object) -> RetryBudgetSettings:
    """Check a retry budget's settings (``hardy.RetryBudget``) and return them normalised."""
    share = _as_float("ratio", ratio, "a number")
    if not math.isfinite(share) or not 0.0 <= share <= MAX_BUDGET_RATIO:
        raise ValueError(f"ratio must be a finite number in [0, {MAX_BUDGET_RATIO:g}], got {ratio!r}")
    floor = _as_float("min_per_second", min_per_second, "a number")
    if not math.isfinite(floor) or floor < 0.0:
        raise ValueError(f"min_per_second must be a finite number >= 0, got {min_per_second!r}")
    span = seconds("window", window, allow_zero=False)
    if span < MIN_BUDGET_WINDOW:
        raise ValueError(f"window must be at least {MIN_BUDGET_WINDOW} seconds, got {window!r}")
    return RetryBudgetSettings(ratio=share, min_per_second=floor, window=span, clock=clock_arg("clock", clock))


def retry_budget(budget: object) -> Any:
    """``budget`` if it is a :class:`hardy.RetryBudget`, else a ``TypeError``."""
    from .budget import RetryBudget  # hardy.budget builds on this module

    if not isinstance(budget, RetryBudget):
        raise TypeError(f"budget must be a hardy.RetryBudget, got {budget!r} ({type(budget).__name__})")
    return budget


# -- rate-based windows (hardy.CountWindow, hardy.TimeWindow) ---------------------------------

MAX_WINDOW_SIZE = 1_000_000  # a count window's ring is at most size / 4 bytes: 250 kB
MAX_WINDOW_SECONDS = 86_400  # a time window keeps a bucket a second: at most a day of them


def rate(name: str, value: object) -> float:
    """A fraction of calls in ``(0, 1]`` (``0.5`` is 50 %)."""
    result = _finite(name, value)
    if not 0.0 < result <= 1.0:
        hint = f" (a fraction: {result / 100:g} for {result:g} %)" if 1.0 < result <= 100.0 else ""
        raise ValueError(f"{name} must be a fraction of calls in (0, 1], got {value!r}{hint}")
    return result


def window_fields(
    kind: str,
    span_name: str,
    span: object,
    span_max: int,
    failure_rate: object,
    minimum_calls: object,
    slow_call_duration: object,
    slow_call_rate: object,
) -> tuple[int, float, int, float | None, float]:
    """Check a window's fields; ``(span, failure_rate, minimum_calls, slow_call_duration, slow_call_rate)``."""
    checked_span = positive_int(span_name, span)
    if checked_span > span_max:
        raise ValueError(f"{span_name} must be at most {span_max}, got {checked_span!r}")
    minimum = positive_int("minimum_calls", minimum_calls)
    if kind == "CountWindow" and minimum > checked_span:
        raise ValueError(
            f"minimum_calls must be <= size ({checked_span}), got {minimum!r}: "
            "a count window never holds more than size calls, so it could never open"
        )
    slow: float | None = None
    if slow_call_duration is not None:
        slow = seconds("slow_call_duration", slow_call_duration, allow_zero=False)
    return checked_span, rate("failure_rate", failure_rate), minimum, slow, rate("slow_call_rate", slow_call_rate)


def window_arg(window: object) -> Any:
    """``window=`` of a breaker: a :class:`~hardy.CountWindow`, a :class:`~hardy.TimeWindow`, or ``None``."""
    from .window import CountWindow, TimeWindow  # the window module checks its fields here

    if window is not None and not isinstance(window, (CountWindow, TimeWindow)):
        raise TypeError(
            f"window must be a hardy.CountWindow, a hardy.TimeWindow or None, got {window!r} ({type(window).__name__})"
        )
    return window
