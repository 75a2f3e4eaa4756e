"""The scrape's builder: every live breaker's samples, made in one pass per breaker.

Written once in Cython's pure-Python mode, like ``hardy/policies``: the
extension includes this file (``_core_c.pyx``), so the loop below runs as C
(typed indices, tuples and dicts built with the C API, a Prometheus
``Sample`` allocated directly), and the twin imports it as it is. It imports
nothing of hardy; :mod:`hardy.metrics` reads it from the running core
(``scrape_breakers``, ``ScrapeSeries``).

One call turns the rows of a scrape (``breaker._counts()`` of every live
breaker: name, state code, successes, failures, ignored, rejections, times
opened; breakers sharing a name already added up) into three lists of
*chunks*, one chunk per breaker and metric: its state gauge (one item per
state), its calls by outcome (four items), its openings (one item). An item
is a ``(labels, value)`` pair (``kind=None``: :class:`hardy.metrics.Family`'s
chunks) or a Prometheus ``Sample`` (``kind=Sample``). A breaker whose row did
not change since the consumer's last scrape hands the very same chunk again,
and a part of a row that did not change (its state, its openings) keeps its
chunk, so a scrape's work is proportional to what changed. Label mappings are
made once per name, at its first scrape, and shared by every consumer.

Example (what :mod:`hardy.metrics` does at each scrape)::

    series = scrape_breakers(series, names, rows, labels, STATES, Sample, NAMES)
    states, outcomes, opened = series.chunks()
    samples = scrape_flat(outcomes)
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
    ``opened`` the chunks of each breaker. A consumer keeps the series
    :func:`scrape_breakers` returns and passes it to the next call.
    """

    __slots__ = ("names", "opened", "outcomes", "rows", "states")

    names: list[Any]
    rows: list[Any]
    states: list[Any]
    outcomes: list[Any]
    opened: list[Any]

    def __init__(self) -> None:
        self.names = []
        self.rows = []
        self.states = []
        self.outcomes = []
        self.opened = []

    def chunks(self) -> tuple[list[Any], list[Any], list[Any]]:
        """The chunks of every breaker: its state gauge's, its calls', its openings' (read them, do not change them)."""
        return (self.states, self.outcomes, self.opened)


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
    made: list[Any] = [{"name": name, "state": state} for state in states]
    made += [{"name": name, "outcome": outcome} for outcome in SCRAPE_OUTCOMES]
    made.append({"name": name})
    kept: tuple[Any, ...] = _scrape_kept(tuple(made))
    labels[name] = kept
    return kept


@cython.cfunc
def _scrape_states(kind: Any, metric: Any, made: tuple[Any, ...], state: Any, count: cython.long) -> tuple[Any, ...]:
    """One breaker's state gauge: 1 for its state code and 0 for the others, or how many breakers are in each."""
    items: list[Any] = []
    k: cython.long
    if isinstance(state, int):
        code: cython.long = state
        for k in range(count):
            items.append(_scrape_item(kind, metric, made[k], 1 if k == code else 0))
    else:
        counts: tuple[Any, ...] = state
        for k in range(count):
            items.append(_scrape_item(kind, metric, made[k], counts[k]))
    return _scrape_kept(tuple(items))


@cython.cfunc
def _scrape_aligned(column: list[Any], where: list[Any]) -> list[Any]:
    """``column`` in a new order: ``where[i]`` is the old index of entry ``i`` (None: a new breaker)."""
    return [None if index is None else column[index] for index in where]


def scrape_flat(chunks: list[Any]) -> list[Any]:
    """Every item of ``chunks``, in order: a metric's samples.

    Example::

        states, outcomes, opened = series.chunks()
        samples = scrape_flat(outcomes)
    """
    total: cython.long = 0
    chunk: tuple[Any, ...]
    for chunk in chunks:
        total += len(chunk)
    flat: list[Any] = [None] * total  # sized once: no growing, no over-allocation
    at: cython.long = 0
    for chunk in chunks:
        for item in chunk:
            flat[at] = item
            at += 1
    return flat


def scrape_breakers(
    last: ScrapeSeries,
    names: list[Any],
    rows: list[Any],
    labels: dict[Any, Any],
    states: tuple[Any, ...],
    kind: Any,
    metrics: tuple[Any, ...],
) -> ScrapeSeries:
    """The chunks of every breaker in ``rows``, reusing those of ``last`` that did not change.

    ``names[i]`` is ``rows[i][0]``, each once. ``labels`` caches each name's
    label mappings (made here at a name's first sight); ``states`` names the
    state codes; ``kind`` is None for pairs or prometheus-client's ``Sample``,
    whose names are ``metrics`` (state, calls, opened). ``last`` is not
    changed: a scrape that raises leaves the consumer's series as it was.

    Example::

        series = scrape_breakers(ScrapeSeries(), ["db"], [("db", 0, 1, 0, 0, 0, 0)], {}, ("closed",), None, NAMES)
    """
    now = ScrapeSeries()
    now.names = names
    now.rows = rows
    old_rows: list[Any]
    if names == last.names:
        old_rows = last.rows
        now.states = list(last.states)
        now.outcomes = list(last.outcomes)
        now.opened = list(last.opened)
    else:
        where: list[Any] = list(map(dict(zip(last.names, range(len(last.names)), strict=True)).get, names))
        old_rows = _scrape_aligned(last.rows, where)
        now.states = _scrape_aligned(last.states, where)
        now.outcomes = _scrape_aligned(last.outcomes, where)
        now.opened = _scrape_aligned(last.opened, where)
    new_states: list[Any] = now.states
    new_outcomes: list[Any] = now.outcomes
    new_opened: list[Any] = now.opened
    count: cython.long = len(states)
    state_metric: Any = metrics[0]
    calls_metric: Any = metrics[1]
    opened_metric: Any = metrics[2]
    n: cython.long = len(rows)
    i: cython.long
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
            new_states[i] = _scrape_states(kind, state_metric, made, row[1], count)
        if old is None or old[2] != row[2] or old[3] != row[3] or old[4] != row[4] or old[5] != row[5]:
            new_outcomes[i] = _scrape_kept(
                (
                    _scrape_item(kind, calls_metric, made[count], row[2]),
                    _scrape_item(kind, calls_metric, made[count + 1], row[3]),
                    _scrape_item(kind, calls_metric, made[count + 2], row[4]),
                    _scrape_item(kind, calls_metric, made[count + 3], row[5]),
                )
            )
        if old is None or old[6] != row[6]:
            new_opened[i] = _scrape_kept((_scrape_item(kind, opened_metric, made[count + 4], row[6]),))
    return now
