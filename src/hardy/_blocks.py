"""Bookkeeping for ``with breaker:`` blocks.

``__exit__`` must settle the admission that its own ``__enter__`` made, even
when one breaker is entered from many threads and tasks at once. The epochs of
the open blocks are kept in a context variable, so each thread and each task
sees only its own blocks and a breaker object needs no per-block state.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["pop", "push"]

_open_blocks: ContextVar[tuple[tuple[object, int], ...]] = ContextVar("hardy_open_blocks", default=())


def push(breaker: object, epoch: int) -> None:
    """Remember that ``breaker`` admitted a block in ``epoch``."""
    _open_blocks.set((*_open_blocks.get(), (breaker, epoch)))


def pop(breaker: object) -> int:
    """Forget the innermost open block of ``breaker`` and return its epoch."""
    blocks = _open_blocks.get()
    for index in range(len(blocks) - 1, -1, -1):
        if blocks[index][0] is breaker:
            _open_blocks.set(blocks[:index] + blocks[index + 1 :])
            return blocks[index][1]
    raise RuntimeError("circuit breaker __exit__ called without a matching __enter__")
