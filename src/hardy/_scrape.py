"""The scrape's builder: every live breaker's samples, made in one pass per breaker.

Written once in Cython's pure-Python mode, like ``hardy/policies``: the
extension includes this file (``_core_c.pyx``), so the loop below runs as C
(typed indices, tuples and dicts built with the C API, a Prometheus
``Sample`` allocated directly), and the twin imports it as it is. It imports
nothing of hardy; :mod:`hardy.metrics` reads it from the running core
(``scrape_breakers``, ``ScrapeSeries``).

One call turns the rows of a scrape (``breaker._counts()`` of every live
breaker: name, state code, successes, failures, ignored, rejections, times
opened; breakers sharing a name already added up) into three columns, one per
metric: the state gauge (one item per state), the calls by outcome (four
items), the openings (one item). An item is a Prometheus ``Sample``
(``kind=Sample``; the columns are then flat, the metric's samples as they are
exported) or a ``(labels, value)`` pair (``kind=None``; the columns then hold
a tuple per breaker, :class:`hardy.metrics.Family`'s chunks). A breaker whose
row did not change since the consumer's last scrape keeps its items, the very
same objects, and a part of a row that did not change (its state, the count
of one outcome, its openings) keeps its own, so a scrape's work is proportional to what changed.
Label mappings are made once per name, at its first scrape, and shared by
every consumer.

Example (what :mod:`hardy.metrics` does at each scrape)::

    series = scrape_breakers(series, names, rows, labels, STATES, Sample, NAMES)
    states, outcomes, opened = series.chunks()  # every breaker's Samples, metric by metric
"""

try:
    import cython
except ModuleNotFoundError:  # the twin, where Cython is not installed
    from hardy.policies import _shadow as cython  # type: ignore[no-redef]

from typing import Any

_scrape_tuple_new: Any = tuple.__new__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
# The outcomes of the calls metric, in the order of a row's counts.
SCRAPE_OUTCOMES = ("success", "failure", "ignored", "rejected")


@cython.cclass
class ScrapeSeries:
    """What one consumer made at its last scrape, per breaker in the order of ``names``.

    ``rows`` are the rows it was made from; ``states``, ``outcomes`` and
    ``opened`` the items made of them (see the module's docstring). A
    consumer starts from :func:`scrape_series` and keeps the series each
    :func:`scrape_breakers` returns for the next call. Only these two make
    one (the compiled type cannot be instantiated).
    """

    __slots__ = ("names", "opened", "outcomes", "rows", "states")

    names: list[Any]
    rows: list[Any]
    states: list[Any]
    outcomes: list[Any]
    opened: list[Any]

    def chunks(self) -> tuple[list[Any], list[Any], list[Any]]:
        """The three columns: the state gauge's, the calls', the openings' (read them, do not change them)."""
        return (self.states, self.outcomes, self.opened)


def scrape_series() -> ScrapeSeries:
    """A new, empty series: a consumer's first scrape reuses nothing.

    Example::

        series = scrape_breakers(scrape_series(), names, rows, labels, STATES, None, NAMES)
    """
    series: ScrapeSeries = ScrapeSeries.__new__(ScrapeSeries)
    series.names = []
    series.rows = []
    series.states = []
    series.outcomes = []
    series.opened = []
    return series


@cython.cfunc
@cython.inline
def _scrape_item(kind: Any, metric: Any, labels: Any, value: Any) -> Any:
    """A pair ``(labels, value)`` when ``kind`` is None, else ``kind(metric, labels, value, None, None, None)``.

    ``kind`` is prometheus-client's ``Sample``, a named tuple of six fields
    (checked by :mod:`hardy.metrics.prometheus` before it passes it):
    compiled, it is allocated and filled as ``tuple.__new__`` would, without
    the intermediate argument tuples.
    """
    if kind is None:
        return _scrape_kept((labels, value))
    if not cython.compiled:
        return _scrape_tuple_new(kind, (metric, labels, value, None, None, None))
    # Defined by _core_c.pyx before it includes this file.
    return _scrape_sample(kind, metric, labels, value)  # type: ignore[name-defined]  # noqa: F821  # pyright: ignore[reportUndefinedVariable, reportUnknownVariableType]


@cython.cfunc
@cython.inline
def _scrape_kept(t: tuple[Any, ...]) -> tuple[Any, ...]:
    """The tuple ``t``, left out of the garbage collector's generations when nothing in it is tracked.

    The collector does so itself at its first look at a tuple; doing it at
    once (compiled) spares that look, which after the first scrape would
    walk every Sample. The twin leaves it to the collector.
    """
    if not cython.compiled:
        return t
    # Defined by _core_c.pyx before it includes this file.
    return _scrape_untracked(t)  # type: ignore[name-defined, no-any-return]  # noqa: F821  # pyright: ignore[reportUndefinedVariable, reportUnknownVariableType]


@cython.cfunc
def _scrape_labels(labels: dict[Any, Any], name: Any, states: tuple[Any, ...]) -> tuple[Any, ...]:
    """``name``'s label mappings, made now: one per state, one per outcome, then the openings'."""
    made: list[Any] = [None] * (len(states) + 5)  # sized once
    at: cython.long = 0
    for state in states:
        made[at] = {"name": name, "state": state}
        at += 1
    for outcome in SCRAPE_OUTCOMES:
        made[at] = {"name": name, "outcome": outcome}
        at += 1
    made[at] = {"name": name}
    kept: tuple[Any, ...] = _scrape_kept(tuple(made))
    labels[name] = kept
    return kept


@cython.cfunc
@cython.inline
def _scrape_state_value(state: Any, k: cython.long) -> Any:
    """The state gauge's value for state code ``k``: 1 for a breaker's state code and 0 for the others,
    or how many of the breakers sharing a name are in it."""
    if isinstance(state, int):
        code: cython.long = state
        return 1 if k == code else 0
    counts: tuple[Any, ...] = state
    return counts[k]


@cython.cfunc
def _scrape_aligned(column: list[Any], where: list[Any], width: cython.long) -> list[Any]:
    """``column`` in a new order, ``width`` entries per breaker: ``where[i]`` is breaker ``i``'s old index.

    A breaker new to the column (``where[i]`` is None) gets ``width`` Nones.
    """
    moved: list[Any] = [None] * (len(where) * width)
    at: cython.long = 0
    start: cython.long
    k: cython.long
    for index in where:
        if index is not None:
            start = index
            start *= width
            for k in range(width):
                moved[at + k] = column[start + k]
        at += width
    return moved


def scrape_breakers(
    last: ScrapeSeries,
    names: list[Any],
    rows: list[Any],
    labels: dict[Any, Any],
    states: tuple[Any, ...],
    kind: Any,
    metrics: tuple[Any, ...],
) -> ScrapeSeries:
    """The items of every breaker in ``rows``, reusing those of ``last`` that did not change.

    ``names[i]`` is ``rows[i][0]``, each once. ``labels`` caches each name's
    label mappings (made here at a name's first sight); ``states`` names the
    state codes; ``kind`` is None for pairs or prometheus-client's ``Sample``,
    whose names are ``metrics`` (state, calls, opened). ``last`` is not
    changed: a scrape that raises leaves the consumer's series as it was.

    Example::

        series = scrape_breakers(scrape_series(), ["db"], [("db", 0, 1, 0, 0, 0, 0)], {}, ("closed",), None, NAMES)
    """
    count: cython.long = len(states)
    # Samples go in flat columns (a metric's samples as they are exported, ``count``, 4 and 1
    # per breaker), pairs in a tuple per breaker (hardy.metrics.Family's chunks).
    flat: cython.bint = kind is not None
    state_width: cython.long = count if flat else 1
    calls_width: cython.long = 4 if flat else 1
    now: ScrapeSeries = ScrapeSeries.__new__(ScrapeSeries)
    now.names = names
    now.rows = rows
    old_rows: list[Any]
    if names == last.names:
        old_rows = last.rows
        now.states = list(last.states)
        now.outcomes = list(last.outcomes)
        now.opened = list(last.opened)
    elif not last.names:  # the consumer's first scrape: nothing to reuse
        old_rows = [None] * len(rows)
        now.states = [None] * (len(rows) * state_width)
        now.outcomes = [None] * (len(rows) * calls_width)
        now.opened = [None] * len(rows)
    else:
        where: list[Any] = list(map(dict(zip(last.names, range(len(last.names)), strict=True)).get, names))
        old_rows = _scrape_aligned(last.rows, where, 1)
        now.states = _scrape_aligned(last.states, where, state_width)
        now.outcomes = _scrape_aligned(last.outcomes, where, calls_width)
        now.opened = _scrape_aligned(last.opened, where, 1)
    new_states: list[Any] = now.states
    new_outcomes: list[Any] = now.outcomes
    new_opened: list[Any] = now.opened
    state_metric: Any = metrics[0]
    calls_metric: Any = metrics[1]
    opened_metric: Any = metrics[2]
    n: cython.long = len(rows)
    i: cython.long
    k: cython.long
    at: cython.long
    row: tuple[Any, ...]
    old: tuple[Any, ...] | None
    made: tuple[Any, ...] | None
    for i in range(n):
        row = _scrape_kept(rows[i])  # kept in the series: left out of the collector too
        old = old_rows[i]
        if old is not None and row == old:
            continue
        name: Any = row[0]
        made = labels.get(name)
        if made is None:
            made = _scrape_labels(labels, name, states)
        if old is None or old[1] != row[1]:
            state: Any = row[1]
            if flat:
                at = i * count
                for k in range(count):
                    new_states[at + k] = _scrape_item(kind, state_metric, made[k], _scrape_state_value(state, k))
            else:
                gauge: list[Any] = [
                    _scrape_item(kind, state_metric, made[k], _scrape_state_value(state, k)) for k in range(count)
                ]
                new_states[i] = _scrape_kept(tuple(gauge))
        if old is None or old[2] != row[2] or old[3] != row[3] or old[4] != row[4] or old[5] != row[5]:
            # Only the outcomes whose counts moved get new items (most calls move one count).
            if flat:
                at = i * 4
                for k in range(4):
                    if old is None or old[2 + k] != row[2 + k]:
                        new_outcomes[at + k] = _scrape_item(kind, calls_metric, made[count + k], row[2 + k])
            else:
                calls: list[Any] = [None] * 4 if old is None else list(new_outcomes[i])
                for k in range(4):
                    if old is None or old[2 + k] != row[2 + k]:
                        calls[k] = _scrape_item(kind, calls_metric, made[count + k], row[2 + k])
                new_outcomes[i] = _scrape_kept(tuple(calls))
        if old is None or old[6] != row[6]:
            opened: Any = _scrape_item(kind, opened_metric, made[count + 4], row[6])
            new_opened[i] = opened if flat else _scrape_kept((opened,))
    return now
