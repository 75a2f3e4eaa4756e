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

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

_scrape_tuple_new: Any = tuple.__new__  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
# The outcomes of the calls metric, in the order of a row's counts.
SCRAPE_OUTCOMES = ("success", "failure", "ignored", "rejected")


@cython.cclass
class ScrapeLabels:
    """A breaker sample's labels: ``name``, and ``state`` or ``outcome`` (or nothing more).

    A read-only mapping that stands for the ``dict`` of the same items: equal
    to it, with its order, ``repr`` and views (``keys()``, ``items()`` and
    ``values()`` are those of a new dict of the items), and ``copy()`` makes
    that dict. A scrape of 10,000 breakers makes 100,000 label sets at its
    first sight of their names; compiled, one is 40 bytes against a two-item
    dict's 184, which halves the time of a process's first scrape. Only the builder makes
    them (the compiled type cannot be instantiated).

    Example::

        labels = sample.labels  # of hardy_circuit_breaker_state
        assert labels == {"name": "payments", "state": "open"}
        assert dict(labels)["state"] == "open"
    """

    __slots__ = ("_key", "_name", "_value")

    _name: str
    _key: str | None  # None: the name alone
    _value: str | None

    def copy(self) -> dict[str, str | None]:
        """The labels as a new ``dict``."""
        if self._key is None:
            return {"name": self._name}
        return {"name": self._name, self._key: self._value}

    def __len__(self) -> int:
        return 1 if self._key is None else 2

    def __getitem__(self, key: object) -> str | None:
        if key == "name":
            return self._name
        if self._key is not None and key == self._key:
            return self._value
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key == "name" or (self._key is not None and key == self._key)

    def __iter__(self) -> Iterator[str]:
        return iter(("name",) if self._key is None else ("name", self._key))

    def get(self, key: object, default: Any = None) -> Any:
        """The value of label ``key``, else ``default``."""
        if key == "name":
            return self._name
        if self._key is not None and key == self._key:
            return self._value
        return default

    def keys(self) -> KeysView[str]:
        """The label names (a view of a new dict of the labels)."""
        return self.copy().keys()

    def items(self) -> ItemsView[str, str | None]:
        """The ``(name, value)`` pairs (a view of a new dict of the labels)."""
        return self.copy().items()

    def values(self) -> ValuesView[str | None]:
        """The label values (a view of a new dict of the labels)."""
        return self.copy().values()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScrapeLabels):
            that: ScrapeLabels = cython.cast(ScrapeLabels, other)
            return self._name == that._name and self._key == that._key and self._value == that._value
        if isinstance(other, Mapping):
            mapping: Mapping[Any, Any] = other  # pyright: ignore[reportUnknownVariableType]
            return self.copy() == dict(mapping)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]  # as a dict's: by value

    def __repr__(self) -> str:
        return repr(self.copy())

    def __or__(self, other: dict[Any, Any]) -> dict[Any, Any]:
        return self.copy() | other

    def __ror__(self, other: dict[Any, Any]) -> dict[Any, Any]:
        return other | self.copy()

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self.copy(),))  # unpickled as the dict it stands for


Mapping.register(ScrapeLabels)  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]


@cython.cfunc
@cython.inline
def _scrape_label_set(name: Any, key: str | None, value: str | None) -> Any:
    """The labels ``name`` (and ``key=value``): a ScrapeLabels for a breaker's name (a str), else a dict."""
    if type(name) is not str:  # a dict holds any object, and is tracked when the name is
        return {"name": name} if key is None else {"name": name, key: value}
    made: ScrapeLabels = ScrapeLabels.__new__(ScrapeLabels)
    made._name = name
    made._key = key
    made._value = value
    return made


@cython.cclass
class ScrapeSeries:
    """What one consumer made at its last scrape, per breaker in the order of ``names``.

    ``rows`` are the rows it was made from; ``states``, ``outcomes`` and
    ``opened`` the items made of them (see the module's docstring). A
    consumer starts from :func:`scrape_series` and keeps the series each
    :func:`scrape_breakers` returns for the next call. Only these two make
    one (the compiled type cannot be instantiated).
    """

    __slots__ = ("names", "opened", "outcomes", "rows", "states", "untracked")

    names: list[Any]
    rows: list[Any]
    states: list[Any]
    outcomes: list[Any]
    opened: list[Any]
    untracked: cython.bint  # compiled: every item is out of the collector's generations, and so are the lists

    def chunks(self) -> tuple[list[Any], list[Any], list[Any]]:
        """The three columns: the state gauge's, the calls', the openings' (read them, do not change them)."""
        return (self.states, self.outcomes, self.opened)

    def exported(self) -> tuple[list[Any], list[Any], list[Any]]:
        """New lists of the three columns, for an exporter to hand on (the series keeps its own).

        Compiled, lists of untracked items are left out of the collector's
        generations too: the collection that follows a scrape would otherwise
        read every Sample's header, twice, through them.
        """
        states: list[Any] = list(self.states)
        outcomes: list[Any] = list(self.outcomes)
        opened: list[Any] = list(self.opened)
        if self.untracked:
            _scrape_untrack(states)
            _scrape_untrack(outcomes)
            _scrape_untrack(opened)
        return (states, outcomes, opened)


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
    series.untracked = False
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
@cython.inline
def _scrape_tracked(o: Any) -> cython.bint:
    """Whether ``o`` is in the collector's generations (the twin says yes: it untracks nothing)."""
    if not cython.compiled:
        return True
    # Defined by _core_c.pyx before it includes this file.
    return _gc_is_tracked(o)  # type: ignore[name-defined, no-any-return]  # noqa: F821  # pyright: ignore[reportUndefinedVariable, reportUnknownVariableType]


@cython.cfunc
@cython.inline
def _scrape_untrack(items: list[Any]) -> None:
    """Leave the list ``items`` of untracked objects out of the collector's generations (compiled).

    It cannot be part of a cycle: nothing it holds is tracked, and only the
    builder fills it.
    """
    if cython.compiled:
        # Defined by _core_c.pyx before it includes this file.
        _gc_untrack(items)  # type: ignore[name-defined]  # noqa: F821  # pyright: ignore[reportUndefinedVariable]


@cython.cfunc
def _scrape_labels(labels: dict[Any, Any], name: Any, states: tuple[Any, ...]) -> tuple[Any, ...]:
    """``name``'s label mappings, made now: one per state, one per outcome, then the openings'."""
    made: list[Any] = [None] * (len(states) + 5)  # sized once
    at: cython.long = 0
    for state in states:
        made[at] = _scrape_label_set(name, "state", state)
        at += 1
    for outcome in SCRAPE_OUTCOMES:
        made[at] = _scrape_label_set(name, "outcome", outcome)
        at += 1
    made[at] = _scrape_label_set(name, None, None)
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
    tracked: cython.bint = False  # a row holds a tracked object (a name that is no str): so may its items
    for i in range(n):
        row = rows[i]
        if not isinstance(row[1], int):  # breakers sharing a name: their counts per state, a tuple of ints
            _scrape_kept(row[1])
        row = _scrape_kept(row)  # kept in the series: left out of the collector too
        if not tracked and _scrape_tracked(row):
            tracked = True
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
    # Every item is made of a row's name and numbers: with no tracked row, none is tracked.
    now.untracked = not tracked
    if not tracked:
        for column in (names, rows, new_states, new_outcomes, new_opened):
            _scrape_untrack(column)
    return now
