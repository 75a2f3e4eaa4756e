"""Matching an exception against an exception specification (both cores).

Wherever hardy takes exception classes (``excluded_exceptions``,
``failure_exceptions``, ``retryable_exceptions``, a fallback's
``exceptions``) each element may also be a predicate on the exception,
``Callable[[BaseException], bool]``. The specification stays one tuple, in
the order given, so ``repr()`` and the registry's comparisons see what the
user wrote.

Classes are checked first, then the predicates in order; a predicate runs
only when no class matched, so a tuple of classes alone costs what
``isinstance`` costs. The compiled core checks the classes in C
(``PyErr_GivenExceptionMatches`` ignores the non-class elements of a tuple)
and comes here for the predicates only.

A predicate that raises makes the settling raise its error, with a note
naming the predicate and where it was given; the caller's dispatch gives any
trial slot back first, so no state is left half-changed.

Example::

    >>> is_5xx = lambda exc: getattr(exc, "status", 0) >= 500
    >>> matches(ValueError(), (KeyError, is_5xx), "excluded_exceptions", "a breaker")
    False
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["classes_of", "has_predicates", "matches", "predicates_match", "result_matches"]


def has_predicates(spec: tuple[Any, ...]) -> bool:
    """Whether ``spec`` holds a predicate (an element that is not a class)."""
    return any(not isinstance(item, type) for item in spec)


def classes_of(spec: tuple[Any, ...]) -> tuple[type[BaseException], ...]:
    """The exception classes of ``spec``, in order."""
    return tuple(item for item in spec if isinstance(item, type))


def matches(exc: BaseException, spec: tuple[Any, ...], what: str, owner: object) -> bool:
    """Whether ``exc`` is an instance of a class of ``spec`` or satisfies one of its predicates.

    ``what`` (the parameter) and ``owner`` (the breaker, retry or chain that
    was given it) name the predicate in the note of an error it raises.
    """
    for item in spec:
        if isinstance(item, type) and isinstance(exc, item):
            return True
    return predicates_match(exc, spec, what, owner)


def predicates_match(exc: BaseException, spec: tuple[Any, ...], what: str, owner: object) -> bool:
    """Whether one of the predicates of ``spec`` says yes to ``exc`` (its classes are not looked at)."""
    for item in spec:
        if isinstance(item, type):
            continue
        try:
            if item(exc):
                return True
        except BaseException as error:
            _note(error, f"raised by the predicate {item!r} of {what} of {owner!r}")
            raise
    return False


def result_matches(predicate: Callable[[Any], object], value: object, what: str, owner: object) -> bool:
    """``bool(predicate(value))``; an error it raises carries a note naming it, ``what`` and ``owner``."""
    try:
        return bool(predicate(value))
    except BaseException as error:
        _note(error, f"raised by the predicate {predicate!r} of {what} of {owner!r}")
        raise


def _note(error: BaseException, text: str) -> None:
    add_note = getattr(error, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(text)
