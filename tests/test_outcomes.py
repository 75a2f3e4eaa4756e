"""Saying what counts: predicates in exception parameters, failure_exceptions, failure_on_result,
retryable predicates and fallback_on_result, on both cores."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import hardy
from hardy import CircuitState

from .conftest import FakeClock


class HTTPError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def server_error(exc: BaseException) -> bool:
    return isinstance(exc, HTTPError) and exc.status >= 500


def raise_(exc: BaseException) -> Any:
    raise exc


class Counting:
    """A predicate that counts its calls."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self, value: object) -> bool:
        self.calls += 1
        return self.answer


class Broken:
    """A predicate that raises, except about the error ``half_open`` trips the breaker with."""

    def __call__(self, value: object) -> bool:
        if isinstance(value, HTTPError) and value.status == 503:
            return False
        raise LookupError("the predicate is broken")

    def __repr__(self) -> str:
        return "<broken predicate>"


def make(clock: FakeClock, **kwargs: Any) -> Any:
    settings: dict[str, Any] = {"failure_threshold": 2, "reset_timeout": 10.0, "half_open_max_calls": 1}
    settings.update(kwargs)
    return hardy.CircuitBreaker("svc", clock=clock, **settings)


def half_open(breaker: Any, clock: FakeClock, exc: Exception | None = None) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure(HTTPError(503) if exc is None else exc)
    assert breaker.state is CircuitState.OPEN
    clock.advance(breaker.reset_timeout)
    assert breaker.state is CircuitState.HALF_OPEN


# -- failure_exceptions and predicates in excluded_exceptions -------------------------------


def test_only_failure_exceptions_are_failures(clock: FakeClock) -> None:
    breaker = make(clock, failure_exceptions=(server_error,))
    for _ in range(5):
        with pytest.raises(HTTPError):
            breaker.call(raise_, HTTPError(404))
    stats = breaker.get_stats()
    assert breaker.state is CircuitState.CLOSED
    assert (stats["successes"], stats["failures"]) == (5, 0)
    for _ in range(2):
        with pytest.raises(HTTPError):
            breaker.call(raise_, HTTPError(503))
    assert breaker.state is CircuitState.OPEN


def test_a_non_matching_error_is_a_success_that_clears_the_failure_count(clock: FakeClock) -> None:
    breaker = make(clock, failure_exceptions=ConnectionError)
    with pytest.raises(ConnectionError):
        breaker.call(raise_, ConnectionError())
    assert breaker.get_stats()["failure_count"] == 1
    with pytest.raises(KeyError):
        breaker.call(raise_, KeyError("answered"))
    assert breaker.get_stats()["failure_count"] == 0


def test_a_non_matching_error_closes_a_half_open_breaker(clock: FakeClock) -> None:
    breaker = make(clock, failure_exceptions=(server_error,))
    half_open(breaker, clock)
    with pytest.raises(HTTPError):
        breaker.call(raise_, HTTPError(404))
    assert breaker.state is CircuitState.CLOSED


def test_excluded_predicates_win_over_failure_exceptions(clock: FakeClock) -> None:
    breaker = make(
        clock,
        excluded_exceptions=(lambda exc: isinstance(exc, HTTPError) and exc.status == 503,),
        failure_exceptions=(server_error,),
    )
    with pytest.raises(HTTPError):
        breaker.call(raise_, HTTPError(503))
    stats = breaker.get_stats()
    assert (stats["ignored"], stats["failures"], stats["successes"]) == (1, 0, 0)
    with pytest.raises(HTTPError):
        breaker.call(raise_, HTTPError(500))
    assert breaker.get_stats()["failures"] == 1


def test_a_predicate_alone_is_accepted_where_a_class_is(clock: FakeClock) -> None:
    breaker = make(clock, excluded_exceptions=server_error)
    assert breaker.excluded_exceptions == (server_error,)
    with pytest.raises(HTTPError):
        breaker.call(raise_, HTTPError(500))
    assert breaker.get_stats()["ignored"] == 1


def test_the_settings_read_back_as_given(clock: FakeClock) -> None:
    breaker = make(clock, excluded_exceptions=[KeyError, server_error], failure_exceptions=[OSError, server_error])
    assert breaker.excluded_exceptions == (KeyError, server_error)
    assert breaker.failure_exceptions == (OSError, server_error)
    assert breaker.failure_on_result is None
    assert make(clock).failure_exceptions is None


def test_predicates_run_only_when_no_class_matched(clock: FakeClock) -> None:
    predicate = Counting(False)
    breaker = make(clock, excluded_exceptions=(KeyError, predicate), failure_threshold=100)
    breaker(lambda: None)()
    breaker.call(lambda: None)
    with breaker:
        pass
    assert predicate.calls == 0
    with pytest.raises(KeyError):
        breaker.call(raise_, KeyError())
    assert predicate.calls == 0
    with pytest.raises(ValueError, match="raised"):
        breaker(raise_)(ValueError("raised"))
    assert predicate.calls == 1


def test_every_path_classifies_the_same(clock: FakeClock) -> None:
    breaker = make(clock, failure_exceptions=(server_error,), failure_threshold=100)

    @breaker
    def decorated(exc: BaseException) -> None:
        raise exc

    @breaker
    async def decorated_async(exc: BaseException) -> None:
        raise exc

    async def coroutine(exc: BaseException) -> None:
        raise exc

    for status in (404, 503):
        with pytest.raises(HTTPError):
            decorated(HTTPError(status))
        with pytest.raises(HTTPError):
            asyncio.run(decorated_async(HTTPError(status)))
        with pytest.raises(HTTPError):
            asyncio.run(breaker.call(coroutine, HTTPError(status)))
        with pytest.raises(HTTPError), breaker:
            raise HTTPError(status)
        breaker.record_failure(HTTPError(status))
    stats = breaker.get_stats()
    assert (stats["successes"], stats["failures"]) == (5, 5)


def test_record_failure_of_a_non_failure_counts_a_success(clock: FakeClock) -> None:
    breaker = make(clock, failure_exceptions=(server_error,))
    half_open(breaker, clock)
    breaker.record_failure(HTTPError(400))
    assert breaker.state is CircuitState.CLOSED


# -- failure_on_result ----------------------------------------------------------------------


def test_a_result_the_predicate_rejects_is_returned_and_counted_as_a_failure(clock: FakeClock) -> None:
    breaker = make(clock, failure_on_result=lambda response: response["status"] >= 500)
    fetch = breaker(lambda status: {"status": status})
    assert fetch(200) == {"status": 200}
    assert fetch(503) == {"status": 503}
    assert breaker.get_stats()["failures"] == 1
    assert breaker.call(lambda: {"status": 502}) == {"status": 502}
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(hardy.CircuitOpenError):
        fetch(200)


def test_failure_on_result_judges_async_results(clock: FakeClock) -> None:
    breaker = make(clock, failure_on_result=lambda value: value is None)

    @breaker
    async def lookup(value: object) -> object:
        await asyncio.sleep(0)
        return value

    async def coroutine() -> None:
        return None

    assert asyncio.run(lookup(None)) is None
    assert asyncio.run(breaker.call(coroutine)) is None
    assert breaker.state is CircuitState.OPEN


def test_a_result_trial_failure_reopens(clock: FakeClock) -> None:
    breaker = make(clock, failure_on_result=lambda value: value == "bad")
    half_open(breaker, clock)
    assert breaker.call(lambda: "bad") == "bad"
    assert breaker.state is CircuitState.OPEN


def test_the_result_predicate_is_not_asked_about_errors(clock: FakeClock) -> None:
    predicate = Counting(False)
    breaker = make(clock, failure_on_result=predicate)
    with pytest.raises(ValueError, match="raised"):
        breaker(raise_)(ValueError("raised"))
    assert predicate.calls == 0
    breaker(lambda: 1)()
    assert predicate.calls == 1


# -- a predicate that raises ----------------------------------------------------------------


@pytest.mark.parametrize("parameter", ["excluded_exceptions", "failure_exceptions"])
def test_an_exception_predicate_that_raises_is_reported_and_gives_the_trial_slot_back(
    clock: FakeClock, parameter: str
) -> None:
    breaker = make(clock, **{parameter: (KeyError, Broken())})
    half_open(breaker, clock, KeyError() if parameter == "failure_exceptions" else HTTPError(503))
    original = HTTPError(500)
    with pytest.raises(LookupError) as info:
        breaker(raise_)(original)
    assert info.value.__context__ is original
    notes = getattr(info.value, "__notes__", None)
    if notes is not None:  # Python 3.11+
        assert any("<broken predicate>" in note and parameter in note for note in notes), notes
    # Not an outcome: still half-open, and its one trial slot is free again.
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.get_stats()["half_open_calls"] == 0
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_a_raising_predicate_on_every_path_leaves_the_breaker_usable(clock: FakeClock) -> None:
    breaker = make(clock, failure_exceptions=(KeyError, Broken()))

    async def coroutine() -> None:
        raise ValueError

    half_open(breaker, clock, KeyError())
    with pytest.raises(LookupError), breaker:
        raise ValueError
    with pytest.raises(LookupError):
        breaker.call(raise_, ValueError())
    with pytest.raises(LookupError):
        asyncio.run(breaker.call(coroutine))
    with pytest.raises(LookupError):
        breaker.record_failure(ValueError())
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.get_stats()["half_open_calls"] == 0


def test_a_result_predicate_that_raises_is_reported_and_gives_the_trial_slot_back(clock: FakeClock) -> None:
    # asyncio.run drives the awaitable itself (am_send on the compiled core):
    # an error return must leave no result behind.
    breaker = make(clock, failure_on_result=Broken())
    half_open(breaker, clock)
    with pytest.raises(LookupError) as info:
        breaker(lambda: 1)()
    notes = getattr(info.value, "__notes__", None)
    if notes is not None:
        assert any("failure_on_result" in note for note in notes), notes
    assert breaker.get_stats()["half_open_calls"] == 0

    @breaker
    async def later() -> int:
        return 1

    with pytest.raises(LookupError):
        asyncio.run(later())
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.get_stats()["half_open_calls"] == 0


def test_a_predicate_raising_an_interrupt_propagates_it(clock: FakeClock) -> None:
    def interrupt(exc: BaseException) -> bool:
        if isinstance(exc, KeyError):
            return False
        raise KeyboardInterrupt

    breaker = make(clock, excluded_exceptions=interrupt)
    half_open(breaker, clock, KeyError())
    with pytest.raises(KeyboardInterrupt):
        breaker(raise_)(ValueError())
    assert breaker.get_stats()["half_open_calls"] == 0


# -- validation and the registry -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"failure_exceptions": ()}, ValueError, "failure_exceptions must name at least one"),
        ({"failure_exceptions": (KeyboardInterrupt,)}, ValueError, "failure_exceptions must be Exception subclasses"),
        ({"failure_exceptions": (ValueError, 3)}, TypeError, "failure_exceptions must hold exception classes"),
        ({"failure_exceptions": "ValueError"}, TypeError, "failure_exceptions must be an exception class"),
        ({"excluded_exceptions": (int,)}, TypeError, "excluded_exceptions must hold exception classes"),
        ({"failure_on_result": 3}, TypeError, "failure_on_result must be a callable"),
        ({"failure_on_result": ValueError}, TypeError, "failure_on_result must be a callable"),
    ],
)
def test_bad_outcome_settings_are_refused(clock: FakeClock, kwargs: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        make(clock, **kwargs)
    with pytest.raises(error, match=text):
        hardy.circuit_breaker("named", **kwargs)


def test_the_registry_compares_the_outcome_settings() -> None:
    first = hardy.circuit_breaker("shared", failure_exceptions=(server_error,))(lambda: 1)
    same = hardy.circuit_breaker("shared", failure_exceptions=[server_error])(lambda: 2)
    assert first.breaker is same.breaker
    with pytest.raises(ValueError, match="other settings"):
        hardy.circuit_breaker("shared")(lambda: 3)
    with pytest.raises(ValueError, match="other settings"):
        hardy.circuit_breaker("shared", failure_exceptions=(server_error,), failure_on_result=bool)(lambda: 3)


def test_circuit_breaker_passes_the_outcome_settings_on() -> None:
    @hardy.circuit_breaker("http", failure_threshold=1, failure_on_result=lambda status: status >= 500)
    def get(status: int) -> int:
        return status

    assert get(503) == 503
    assert get.breaker.state is CircuitState.OPEN


# -- retry ----------------------------------------------------------------------------------


def test_retry_retries_what_a_predicate_says() -> None:
    attempts: list[int] = []

    @hardy.retry(max_attempts=4, initial_delay=0, retryable_exceptions=(KeyError, server_error))
    def flaky(statuses: list[int]) -> str:
        attempts.append(1)
        status = statuses.pop(0)
        if status:
            raise HTTPError(status)
        return "done"

    assert flaky([503, 502, 0]) == "done"
    assert len(attempts) == 3
    with pytest.raises(HTTPError):
        flaky([404, 0])
    assert len(attempts) == 4


def test_async_retry_retries_what_a_predicate_says() -> None:
    attempts: list[int] = []

    @hardy.retry(max_attempts=4, initial_delay=0, retryable_exceptions=server_error)
    async def flaky(statuses: list[int]) -> str:
        attempts.append(1)
        status = statuses.pop(0)
        if status:
            raise HTTPError(status)
        return "done"

    assert asyncio.run(flaky([500, 0])) == "done"
    with pytest.raises(HTTPError):
        asyncio.run(flaky([404, 0]))
    assert len(attempts) == 3


def test_a_retry_that_a_predicate_keeps_going_gives_up_with_the_last_error() -> None:
    # Only the predicate matches: every attempt's error reaches the hooks and
    # the last one is raised when the attempts run out (sync and async).
    seen: list[BaseException | None] = []
    last: list[HTTPError] = []

    def on_retry(exc: BaseException | None, attempt: int) -> None:
        seen.append(exc)

    def fail() -> None:
        last.append(HTTPError(503))
        raise last[-1]

    retried = hardy.retry(max_attempts=3, initial_delay=0, retryable_exceptions=server_error, on_retry=on_retry)

    @retried
    def down() -> None:
        fail()

    @retried
    async def down_async() -> None:
        fail()

    for run in (down, lambda: asyncio.run(down_async())):
        seen.clear()
        last.clear()
        with pytest.raises(HTTPError) as info:
            run()
        assert info.value is last[-1]
        assert seen == last[:2]


def test_a_retry_predicate_that_raises_stops_the_retry_and_is_reported() -> None:
    calls: list[int] = []

    @hardy.retry(max_attempts=4, initial_delay=0, retryable_exceptions=(KeyError, Broken()))
    def flaky() -> None:
        calls.append(1)
        raise ValueError("the call's own error")

    @hardy.retry(max_attempts=4, initial_delay=0, retryable_exceptions=(KeyError, Broken()))
    async def flaky_async() -> None:
        calls.append(1)
        raise ValueError("the call's own error")

    with pytest.raises(LookupError) as info:
        flaky()
    assert isinstance(info.value.__context__, ValueError)
    with pytest.raises(LookupError) as info:
        asyncio.run(flaky_async())
    assert isinstance(info.value.__context__, ValueError)
    assert len(calls) == 2


def test_retry_config_reads_the_predicates_back() -> None:
    config = hardy.RetryConfig(retryable_exceptions=[OSError, server_error])
    assert config.retryable_exceptions == (OSError, server_error)


# -- fallback -------------------------------------------------------------------------------


def test_fallback_exceptions_take_predicates() -> None:
    @hardy.fallback(lambda status: "cached", exceptions=(server_error,))
    def read(status: int) -> str:
        raise HTTPError(status)

    assert read(503) == "cached"
    with pytest.raises(HTTPError):
        read(404)


def test_fallback_on_result_moves_on_to_the_next_function() -> None:
    @hardy.fallback(lambda key: {"from": "cache"}, fallback_on_result=lambda value: value is None)
    def read(key: str) -> dict[str, str] | None:
        return None if key == "missing" else {"from": "primary"}

    assert read("there") == {"from": "primary"}
    assert read("missing") == {"from": "cache"}


def test_fallback_on_result_without_default_returns_the_last_rejected_result() -> None:
    chain = hardy.with_fallback(lambda: None, [lambda: raise_(KeyError())], fallback_on_result=lambda v: v is None)
    assert chain() is None
    with_default = hardy.with_fallback(lambda: None, [lambda: None], "default", fallback_on_result=lambda v: v is None)
    assert with_default() == "default"


def test_fallback_on_result_in_async_chains_and_fallback_objects() -> None:
    async def primary() -> int:
        return -1

    async def secondary() -> int:
        return 7

    chain = hardy.with_fallback(primary, [secondary], fallback_on_result=lambda v: v < 0)
    assert asyncio.run(chain()) == 7
    named = hardy.Fallback("numbers", [lambda: -1, lambda: 3], fallback_on_result=lambda v: v < 0)
    assert named.execute() == 3
    assert asyncio.run(named.execute_async()) == 3


def test_a_fallback_predicate_that_raises_is_reported() -> None:
    @hardy.fallback(lambda: "cached", exceptions=(KeyError, Broken()))
    def read() -> str:
        raise ValueError("primary")

    with pytest.raises(LookupError) as info:
        read()
    assert isinstance(info.value.__context__, ValueError)

    @hardy.fallback(lambda: "cached", fallback_on_result=Broken())
    def answer() -> str:
        return "primary"

    with pytest.raises(LookupError):
        answer()


def test_fallback_refuses_bad_predicates() -> None:
    with pytest.raises(TypeError, match="fallback_on_result must be a callable"):
        hardy.fallback(lambda: 1, fallback_on_result=3)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="Exception subclasses"):
        hardy.fallback(lambda: 1, exceptions=(KeyboardInterrupt, server_error))
