"""The marker for "no default given", so that ``None`` can be a real default."""

from __future__ import annotations

import enum

__all__ = ["NO_DEFAULT", "NoDefault"]


class NoDefault(enum.Enum):
    """The type of :data:`NO_DEFAULT` (an enum, so type checkers can narrow it)."""

    NO_DEFAULT = "no default"

    def __repr__(self) -> str:
        return "<no default>"


NO_DEFAULT = NoDefault.NO_DEFAULT
