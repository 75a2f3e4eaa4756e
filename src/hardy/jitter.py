"""How retry delays are randomised."""

from __future__ import annotations

import enum

__all__ = ["Jitter"]


class Jitter(enum.Enum):
    """The jitter applied to the exponential backoff ``base`` of a retry delay.

    * ``NONE``: exactly ``base``.
    * ``FULL``: uniform in ``[0, base]`` ("full jitter"; ``jitter=True``).
    * ``EQUAL``: uniform in ``[base / 2, base]``.
    * ``DECORRELATED``: uniform in ``[initial_delay, 3 * previous_delay]``,
      capped at ``max_delay`` (the first retry uses ``initial_delay`` as the
      previous delay).

    Example::

        hardy.RetryConfig(initial_delay=0.1, jitter=hardy.Jitter.DECORRELATED)
    """

    NONE = "none"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"

    def __bool__(self) -> bool:
        # ``if config.jitter:`` reads as "is there jitter", whatever was passed.
        return self is not Jitter.NONE
