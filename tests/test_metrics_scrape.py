"""The scrape's builder (hardy._scrape) against a reference made from the breakers' public statistics.

Every scrape below is compared, sample by sample and in order, with what
``get_stats()`` of every live breaker says (added up per name, as documented
in docs/metrics.md): the first scrape, one where nothing changed, one where
some breakers changed, names added and removed, breakers sharing a name, a
breaker collected between two scrapes. Both exporters' inputs are checked:
the Prometheus collector's Samples (made by the builder itself) and the
``(labels, value)`` pairs of ``hardy.metrics.collect()``. The ``core``
fixture runs each test on the compiled builder and on the twin's.
"""

from __future__ import annotations

import gc
import pickle
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.samples import Sample

import hardy
import hardy.metrics
import hardy.metrics.prometheus
from hardy import _live
from hardy.metrics import _sources
from hardy.state import STATE_BY_CODE

from .conftest import FakeClock

FAMILIES = ("hardy_circuit_breaker_state", "hardy_circuit_breaker_calls", "hardy_circuit_breaker_opened")
# One row of a scrape: metric, labels, value.
Row = tuple[str, dict[str, str], float]


class Boom(Exception):
    pass


class Ignored(Exception):
    pass


def fail() -> None:
    raise Boom


def ignored() -> None:
    raise Ignored


def expected() -> list[Row]:
    """Every live breaker's series from get_stats(), per name in the order of first sight."""
    totals: dict[str, dict[str, Any]] = {}
    for breaker in _live.breakers():
        stats = breaker.get_stats()
        total = totals.setdefault(
            stats["name"],
            {"states": dict.fromkeys((s.value for s in STATE_BY_CODE), 0), "counts": [0, 0, 0, 0], "opened": 0},
        )
        total["states"][stats["state"]] += 1
        for index, key in enumerate(("successes", "failures", "ignored", "rejections")):
            total["counts"][index] += stats[key]
        total["opened"] += stats["opened"]
    rows: list[Row] = []
    for name, total in totals.items():
        rows += [("hardy_circuit_breaker_state", {"name": name, "state": s}, n) for s, n in total["states"].items()]
    for name, total in totals.items():
        outcomes = ("success", "failure", "ignored", "rejected")
        rows += [
            ("hardy_circuit_breaker_calls_total", {"name": name, "outcome": o}, n)
            for o, n in zip(outcomes, total["counts"], strict=True)
        ]
    for name, total in totals.items():
        rows.append(("hardy_circuit_breaker_opened_total", {"name": name}, total["opened"]))
    return rows


def still(read: Callable[[], Any]) -> tuple[Any, list[Row]]:
    """``read()`` and the reference, with no garbage collection in between (it could drop a breaker)."""
    gc.collect()
    gc.disable()
    try:
        return read(), expected()
    finally:
        gc.enable()


def samples_of(collector: hardy.metrics.prometheus.HardyCollector) -> tuple[list[Sample], list[Row]]:
    """The breakers' Samples of one scrape by ``collector``, and the reference at that moment."""
    metrics, reference = still(lambda: list(collector.collect()))
    found = [sample for metric in metrics if metric.name in FAMILIES for sample in metric.samples]
    return found, reference


def rows_of(samples: list[Sample]) -> list[Row]:
    for sample in samples:
        assert type(sample) is Sample
        assert (sample.timestamp, sample.exemplar, sample.native_histogram) == (None, None, None)
    return [(sample.name, sample.labels, sample.value) for sample in samples]


def check(collector: hardy.metrics.prometheus.HardyCollector) -> list[Sample]:
    """One scrape: its breaker Samples equal the reference, in order. Returns them."""
    found, reference = samples_of(collector)
    assert rows_of(found) == reference
    return found


def pairs() -> list[Row]:
    """``hardy.metrics.collect()``'s breaker families, as rows (the ``(labels, value)`` pairs' consumer)."""
    families, reference = still(hardy.metrics.collect)
    rows: list[Row] = []
    for family in families:
        if family.name in FAMILIES:
            name = f"{family.name}_total" if family.kind == "counter" else family.name
            rows += [(name, dict(labels), value) for labels, value in family.all_samples()]
    assert rows == reference
    return rows


@pytest.fixture
def collector() -> Iterator[hardy.metrics.prometheus.HardyCollector]:
    gc.collect()  # breakers of earlier tests
    return hardy.metrics.prometheus.HardyCollector()


def by_name(samples: list[Sample], name: str) -> list[Sample]:
    return [sample for sample in samples if sample.labels["name"] == name]


def test_the_builder_is_the_running_cores(core: ModuleType) -> None:
    assert _sources.builder() is core


def test_first_scrape_of_every_state_and_count(collector: Any, clock: FakeClock) -> None:
    plain = hardy.CircuitBreaker("scrape-plain")
    busy = hardy.CircuitBreaker("scrape-busy", failure_threshold=2, excluded_exceptions=Ignored, clock=clock)
    for _ in range(3):
        busy.call(int)
    with pytest.raises(Ignored):
        busy.call(ignored)
    for _ in range(2):
        with pytest.raises(Boom):
            busy.call(fail)
    with pytest.raises(hardy.CircuitOpenError):
        busy.call(int)
    half = hardy.CircuitBreaker("scrape-half-open", failure_threshold=1, reset_timeout=5, clock=clock)
    with pytest.raises(Boom):
        half.call(fail)
    clock.advance(10)  # past its reset timeout: shown half open, as .state says
    forced = hardy.CircuitBreaker("scrape-forced")
    forced.force_open()
    off = hardy.CircuitBreaker("scrape-disabled")
    off.disable()
    found = check(collector)
    assert rows_of(by_name(found, "scrape-busy"))[5:] == [
        ("hardy_circuit_breaker_calls_total", {"name": "scrape-busy", "outcome": "success"}, 3),
        ("hardy_circuit_breaker_calls_total", {"name": "scrape-busy", "outcome": "failure"}, 2),
        ("hardy_circuit_breaker_calls_total", {"name": "scrape-busy", "outcome": "ignored"}, 1),
        ("hardy_circuit_breaker_calls_total", {"name": "scrape-busy", "outcome": "rejected"}, 1),
        ("hardy_circuit_breaker_opened_total", {"name": "scrape-busy"}, 1),
    ]
    for breaker, state in ((plain, "closed"), (busy, "open"), (half, "half_open"), (forced, "forced_open")):
        gauge = {s.labels["state"]: s.value for s in by_name(found, breaker.name)[:5]}
        assert gauge == {s.value: int(s.value == state) for s in STATE_BY_CODE}
    assert {s.labels["state"]: s.value for s in by_name(found, "scrape-disabled")[:5]}["disabled"] == 1
    pairs()


def test_unchanged_breakers_hand_the_very_same_samples(collector: Any) -> None:
    breakers = [hardy.CircuitBreaker(f"scrape-same-{i}") for i in range(20)]
    for breaker in breakers[::3]:
        breaker.call(int)
    first = check(collector)
    second = check(collector)
    assert len(first) == len(second)
    assert all(a is b for a, b in zip(first, second, strict=True))
    pairs()
    families, _ = still(hardy.metrics.collect)
    again, _ = still(hardy.metrics.collect)
    for family, later in zip(families, again, strict=True):
        if family.name in FAMILIES:  # the same chunks: OpenTelemetry reuses what it made of them
            assert family.chunks
            assert all(a is b for a, b in zip(family.chunks, later.chunks, strict=True))


def test_some_changed_only_those_are_made_again(collector: Any) -> None:
    breakers = [
        hardy.CircuitBreaker(f"scrape-some-{i}", failure_threshold=1 if i == 5 else 5, excluded_exceptions=Ignored)
        for i in range(10)
    ]
    with pytest.raises(Boom):
        breakers[5].call(fail)
    before = check(collector)
    with pytest.raises(hardy.CircuitOpenError):  # only its rejections move
        breakers[5].call(int)
    breakers[2].call(int)
    with pytest.raises(Ignored):  # only its ignored count moves
        breakers[8].call(ignored)
    breakers[7].force_open()
    with pytest.raises(Boom):
        breakers[4].call(fail)
    after = check(collector)
    moved = {2: 0, 4: 1, 8: 2, 5: 3}  # breaker: the outcome whose count moved (success, failure, ignored, rejected)
    for i in range(10):
        name = f"scrape-some-{i}"
        old, new = by_name(before, name), by_name(after, name)
        same = [a is b for a, b in zip(old, new, strict=True)]
        if i in moved:  # one count moved: that outcome's sample is new, the gauge, other outcomes, openings kept
            assert same == [True] * 5 + [k != moved[i] for k in range(4)] + [True]
        elif i == 7:  # the state and the openings moved (force_open counts an opening, no call)
            assert same == [False] * 5 + [True] * 4 + [False]
        else:
            assert all(same)
    pairs()


def test_names_added_and_removed_between_scrapes(collector: Any) -> None:
    breakers = {i: hardy.CircuitBreaker(f"scrape-moving-{i}") for i in range(6)}
    check(collector)
    pairs()
    del breakers[1], breakers[4]
    breakers[6] = hardy.CircuitBreaker("scrape-moving-6")
    breakers[3].call(int)
    found = check(collector)
    names = {sample.labels["name"] for sample in found}
    assert "scrape-moving-1" not in names
    assert "scrape-moving-4" not in names
    assert "scrape-moving-6" in names
    pairs()
    breakers.clear()
    found = check(collector)
    assert not any(sample.labels["name"].startswith("scrape-moving-") for sample in found)
    pairs()


def test_breakers_sharing_a_name_are_added_up(collector: Any) -> None:
    one = hardy.CircuitBreaker("scrape-shared")
    one.call(int)
    check(collector)
    pairs()
    two = hardy.CircuitBreaker("scrape-shared", failure_threshold=1)
    with pytest.raises(Boom):
        two.call(fail)
    found = check(collector)
    gauge = {s.labels["state"]: s.value for s in by_name(found, "scrape-shared")[:5]}
    assert gauge["closed"] == 1
    assert gauge["open"] == 1
    assert rows_of(by_name(found, "scrape-shared"))[5:7] == [
        ("hardy_circuit_breaker_calls_total", {"name": "scrape-shared", "outcome": "success"}, 1),
        ("hardy_circuit_breaker_calls_total", {"name": "scrape-shared", "outcome": "failure"}, 1),
    ]
    pairs()
    del two  # back to one breaker under that name: a state code again, not counts per state
    check(collector)
    pairs()


def test_a_shared_name_leaves_the_other_breakers_rows_as_they_are(collector: Any) -> None:
    # Only the shared name is added up: the unique names' Samples stay the very same objects.
    breakers = [hardy.CircuitBreaker(f"scrape-among-{i}") for i in range(6)]
    twins = [hardy.CircuitBreaker("scrape-among-twice") for _ in range(3)]
    breakers.insert(2, hardy.CircuitBreaker("scrape-among-twice"))
    twins[1].call(int)
    first = check(collector)
    twins[2].call(int)
    second = check(collector)
    for i in range(6):
        name = f"scrape-among-{i}"
        assert all(a is b for a, b in zip(by_name(first, name), by_name(second, name), strict=True))
    calls = rows_of(by_name(second, "scrape-among-twice"))[5]
    assert calls == ("hardy_circuit_breaker_calls_total", {"name": "scrape-among-twice", "outcome": "success"}, 2)
    gauge = {s.labels["state"]: s.value for s in by_name(second, "scrape-among-twice")[:5]}
    assert gauge["closed"] == 4
    pairs()


def test_a_breaker_collected_between_scrapes_leaves(collector: Any) -> None:
    keep = hardy.CircuitBreaker("scrape-kept")
    gone = hardy.CircuitBreaker("scrape-gone")
    gone.call(int)
    assert by_name(check(collector), "scrape-gone")
    pairs()
    del gone
    gc.collect()
    found = check(collector)
    assert not by_name(found, "scrape-gone")
    assert by_name(found, "scrape-kept")
    assert keep.name == "scrape-kept"
    pairs()


def test_collectors_keep_their_own_series(collector: Any) -> None:
    breakers = [hardy.CircuitBreaker(f"scrape-two-{i}") for i in range(4)]
    other = hardy.metrics.prometheus.HardyCollector()
    check(collector)
    breakers[1].call(int)
    check(other)  # the other collector's first scrape, made after the change
    breakers[2].call(int)
    check(collector)  # sees both changes, though the other scraped in between
    check(other)
    pairs()


def test_the_generic_path_gives_the_same_samples(collector: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    breakers = [hardy.CircuitBreaker(f"scrape-generic-{i}") for i in range(5)]
    breakers[0].call(int)
    direct = rows_of(check(collector))
    monkeypatch.setattr(hardy.metrics.prometheus, "_DIRECT", False)
    generic = hardy.metrics.prometheus.HardyCollector()
    assert rows_of(check(generic)) == direct
    breakers[3].call(int)
    check(generic)


def test_a_failed_breaker_scrape_is_logged_and_the_next_one_is_whole(
    collector: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    breakers = [hardy.CircuitBreaker(f"scrape-failing-{i}") for i in range(3)]
    check(collector)

    def broken() -> Any:
        raise RuntimeError("counts unreadable")

    with monkeypatch.context() as patch:
        patch.setattr(_sources, "breaker_rows", broken)
        metrics = list(collector.collect())
    assert not [metric for metric in metrics if metric.name in FAMILIES]
    assert "counts unreadable" in caplog.text
    breakers[0].call(int)
    check(collector)


def test_the_builder_leaves_the_last_series_unchanged(core: ModuleType) -> None:
    labels: dict[str, Any] = {}
    states = tuple(s.value for s in STATE_BY_CODE)
    names = ("s", "c", "o")
    first = core.scrape_breakers(
        core.scrape_series(),
        ["a", "b"],
        [("a", 0, 1, 0, 0, 0, 0), ("b", 1, 0, 2, 0, 0, 1)],
        labels,
        states,
        None,
        names,
    )
    kept = [list(column) for column in first.chunks()]
    second = core.scrape_breakers(
        first, ["b", "c"], [("b", 1, 0, 3, 0, 0, 1), ("c", 0, 0, 0, 0, 0, 0)], labels, states, None, names
    )
    assert [list(column) for column in first.chunks()] == kept
    states_now, outcomes_now, opened_now = second.chunks()
    assert states_now[0] is kept[0][1]
    assert opened_now[0] is kept[2][1]
    assert outcomes_now[0] == (
        ({"name": "b", "outcome": "success"}, 0),
        ({"name": "b", "outcome": "failure"}, 3),
        ({"name": "b", "outcome": "ignored"}, 0),
        ({"name": "b", "outcome": "rejected"}, 0),
    )
    assert states_now[1] == tuple(({"name": "c", "state": s}, int(s == "closed")) for s in states)


class Named(str):
    """A name the garbage collector tracks (it has a ``__dict__``)."""


def test_samples_holding_tracked_objects_stay_tracked(core: ModuleType) -> None:
    # The compiled breaker takes only a str name: the builder is given such a row directly.
    states = tuple(s.value for s in STATE_BY_CODE)
    names = ("s", "c_total", "o_total")
    odd, plain = Named("odd"), "plain"
    rows = [(odd, 0, 1, 0, 0, 0, 0), (plain, 0, 1, 0, 0, 0, 0)]
    series = core.scrape_breakers(core.scrape_series(), [odd, plain], rows, {}, states, Sample, names)
    chunks = series.chunks()
    assert gc.is_tracked(odd)
    widths = (len(states), 4, 1)  # Samples per breaker in each (flat) column
    for column, width in zip(chunks, widths, strict=True):
        assert len(column) == 2 * width
        for sample in column[:width]:
            assert type(sample) is Sample
            assert gc.is_tracked(sample.labels)
            assert gc.is_tracked(sample)  # a cycle through it stays collectable
    if core.IMPLEMENTATION == "c":  # made untracked at once (the twin leaves that to the collector's first look)
        assert not any(
            gc.is_tracked(sample) for column, width in zip(chunks, widths, strict=True) for sample in column[width:]
        )
    assert all(gc.is_tracked(column) for column in (*chunks, *series.exported()))  # they hold tracked Samples
    assert rows_of(chunks[1]) == [
        ("c_total", {"name": name, "outcome": outcome}, int(outcome == "success"))
        for name in ("odd", "plain")
        for outcome in ("success", "failure", "ignored", "rejected")
    ]


def label_sets(core: ModuleType) -> tuple[Any, ...]:
    """The builder's label sets of one breaker name: one per state, one per outcome, the openings'."""
    states = tuple(s.value for s in STATE_BY_CODE)
    cache: dict[Any, Any] = {}
    core.scrape_breakers(core.scrape_series(), ["db"], [("db", 0, 0, 0, 0, 0, 0)], cache, states, None, ("s", "c", "o"))
    return cache["db"]  # type: ignore[no-any-return]


def test_label_sets_behave_as_the_dicts_they_stand_for(core: ModuleType) -> None:
    made = label_sets(core)
    states = [s.value for s in STATE_BY_CODE]
    dicts = [{"name": "db", "state": state} for state in states]
    dicts += [{"name": "db", "outcome": outcome} for outcome in ("success", "failure", "ignored", "rejected")]
    dicts.append({"name": "db"})
    assert len(made) == len(dicts)
    for labels, same in zip(made, dicts, strict=True):
        assert isinstance(labels, Mapping)
        assert labels == same
        assert same == labels
        assert not labels != same  # noqa: SIM202 - __ne__ itself
        assert labels != {**same, "name": "other"}
        assert labels != {"name": "db", "extra": "x"}
        assert labels != [("name", "db")]  # not a mapping: not equal, as for a dict
        assert len(labels) == len(same)
        assert list(labels) == list(same)
        assert labels.keys() == same.keys()
        assert list(labels.items()) == list(same.items())
        assert list(labels.values()) == list(same.values())
        assert repr(labels) == repr(same)
        assert dict(labels) == same
        assert {**labels} == same
        for key in (*same, "missing", 1, None):
            assert (key in labels) == (key in same)
            assert labels.get(key, "-") == same.get(key, "-")
        assert labels["name"] == "db"
        with pytest.raises(KeyError):
            labels["missing"]
        copied = labels.copy()
        assert type(copied) is dict
        copied["name"] = "changed"  # a new dict: the labels stay as they were
        assert labels == same
        assert labels | {"zone": "a"} == same | {"zone": "a"}
        assert {"zone": "a"} | labels == {"zone": "a"} | same
        assert pickle.loads(pickle.dumps(labels)) == same
        with pytest.raises(TypeError):
            hash(labels)
    assert made[0] == label_sets(core)[0]  # label sets made apart compare by value
    assert made[0] != made[1]


class Interrupt(BaseException):
    pass


def test_user_code_a_label_set_runs_may_raise_any_exception_or_read_it_again(core: ModuleType) -> None:
    # User code runs in a label set's comparisons: a key's __eq__, another mapping's methods.
    labels = label_sets(core)[0]
    seen: list[object] = []

    class Key:
        def __eq__(self, other: object) -> bool:
            seen.append(labels.get("name"))  # re-entry: the label set read from inside its own lookup
            raise Interrupt

        __hash__ = object.__hash__

    class Raising(Mapping[str, str]):
        def __getitem__(self, key: str) -> str:
            raise Interrupt

        def __iter__(self) -> Iterator[str]:
            return iter(["name"])

        def __len__(self) -> int:
            return 1

    attempts: list[Callable[[], object]] = [
        lambda: labels[Key()],
        lambda: Key() in labels,
        lambda: labels.get(Key()),
        lambda: labels == Raising(),
    ]
    for attempt in attempts:
        with pytest.raises(Interrupt):
            attempt()
    assert seen == ["db"] * 3
    assert labels == {"name": "db", "state": STATE_BY_CODE[0].value}  # unchanged by any of it


def test_label_sets_of_a_name_that_is_no_str_are_dicts(core: ModuleType) -> None:
    odd = Named("odd")
    states = tuple(s.value for s in STATE_BY_CODE)
    cache: dict[Any, Any] = {}
    core.scrape_breakers(core.scrape_series(), [odd], [(odd, 0, 0, 0, 0, 0, 0)], cache, states, None, ("s", "c", "o"))
    assert all(type(labels) is dict and labels["name"] is odd for labels in cache[odd])


def test_label_sets_cannot_be_made_by_hand_in_the_compiled_core(core: ModuleType) -> None:
    labels_type = type(label_sets(core)[0])
    if core.IMPLEMENTATION == "c":
        with pytest.raises(TypeError):
            labels_type()
    else:  # a plain class of the twin: made by hand, it is empty and reads as such
        with pytest.raises(AttributeError):
            len(labels_type())


def test_lists_of_untracked_samples_are_left_out_of_the_collector(core: ModuleType) -> None:
    # Compiled, the collection that follows a scrape does not read 100,000 Samples through them.
    states = tuple(s.value for s in STATE_BY_CODE)
    names = ["a", "b", "shared"]
    shared_states = tuple([1, 0, 1, 0, 0])  # noqa: C409 - a new tuple, tracked until looked at
    rows = [("a", 0, 1, 0, 0, 0, 0), ("b", 1, 0, 2, 0, 0, 1), ("shared", shared_states, 2, 0, 0, 0, 1)]
    series = core.scrape_breakers(core.scrape_series(), names, rows, {}, states, Sample, ("s", "c", "o"))
    exported = series.exported()
    assert [list(column) for column in exported] == [list(column) for column in series.chunks()]
    assert all(a is not b for a, b in zip(exported, series.chunks(), strict=True))  # copies to hand on
    lists = (names, rows, *series.chunks(), *exported)
    if core.IMPLEMENTATION == "c":
        assert not any(gc.is_tracked(items) for items in lists)
    else:  # the twin untracks nothing
        assert all(gc.is_tracked(items) for items in lists)
    again = core.scrape_breakers(series, list(names), list(rows), {}, states, Sample, ("s", "c", "o"))
    assert all(a is b for a, b in zip(again.chunks()[0], series.chunks()[0], strict=True))
    gc.collect()  # the collector copes with them (nothing it holds is tracked)
