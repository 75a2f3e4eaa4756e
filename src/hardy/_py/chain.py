"""The fallback chain in the twin (the compiled one is ``hardy/_c/chain.pxi``).

Both cores run the rest of a chain, and every async chain, in
:mod:`hardy._chain`; this is only its first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _chain, _match, _wrapping

__all__ = ["chain"]


def chain(
    name: str,
    funcs: tuple[Callable[..., Any], ...],
    default: object,
    exceptions: tuple[Any, ...],
    log: bool,
    on_result: Callable[[Any], object] | None = None,
) -> Callable[..., Any]:
    """Call ``funcs[0]``; when it raises one of ``exceptions`` (or ``on_result`` turns its result down), the next.

    When all fail: ``default`` unless it is ``NO_DEFAULT``, else
    ``AllFallbacksFailedError``. The result is async when any function is
    (a sync primary may have async fallbacks); an async chain awaits its
    async functions and calls its sync ones.
    """
    first = funcs[0]
    awaited = tuple(_wrapping.is_async_callable(func) for func in funcs)
    if awaited[0] and on_result is None:
        run_chain_async = _chain.run_chain_async

        # As the compiled core's first try: await the primary here, and hand
        # the rest of the chain its failure (the chain logs it, as its own).
        async def first_then_chain(*args: Any, **kwargs: Any) -> Any:
            try:
                # Without keywords, f(*args): a call through ** costs a mapping more.
                return await (first(*args, **kwargs) if kwargs else first(*args))
            except Exception as exc:
                if not _match.matches(exc, exceptions, "exceptions", name):
                    raise
                errors: list[BaseException] = [exc]
            return await run_chain_async(name, funcs, awaited, args, kwargs, default, exceptions, log, None, 1, errors)

        return _wrapping.copy_metadata(first_then_chain, first, is_async=True)  # type: ignore[no-any-return]
    if any(awaited):

        async def run_async(*args: Any, **kwargs: Any) -> Any:
            return await _chain.run_chain_async(name, funcs, awaited, args, kwargs, default, exceptions, log, on_result)

        return _wrapping.copy_metadata(run_async, first, is_async=True)  # type: ignore[no-any-return]

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = first(*args, **kwargs)
        except Exception as exc:
            if not _match.matches(exc, exceptions, "exceptions", name):
                raise
            errors: list[BaseException] = [exc]
            return _chain.continue_chain(name, funcs, 1, args, kwargs, errors, default, exceptions, log, on_result)
        if on_result is None or not _chain.rejects(on_result, result, name):
            return result
        return _chain.continue_chain(name, funcs, 1, args, kwargs, [], default, exceptions, log, on_result, result)

    return _wrapping.copy_metadata(run, first, is_async=False)  # type: ignore[no-any-return]
