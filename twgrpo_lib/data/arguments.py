"""Valid ranges of numeric settings, checked before any work starts.

A :class:`Bound` is both the ``type=`` of a command-line flag (a value out of range is a usage error when the
arguments are parsed, exit status 2) and the check of a library call (:func:`check`, a ``ValueError`` naming
the setting), so ``twgrpo evaluate --batch-size 0`` and ``EvalSettings(batch_size=0)`` fail the same way
before a model is loaded.

>>> at_least(1)("3")
3
>>> check({"steps": 0}, {"steps": at_least(1)})
Traceback (most recent call last):
ValueError: steps must be an integer >= 1, got 0
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Bound:
    """A number of ``kind`` within ``[low, high]``; ``open_low`` / ``open_high`` exclude an end."""

    kind: type = int
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def describe(self) -> str:
        """In words, e.g. ``an integer >= 1`` or ``a number > 0 and <= 1``.

        >>> Bound(float, 0, 1, open_low=True).describe()
        'a number > 0 and <= 1'
        """
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high:g}")
        return ("an integer" if self.kind is int else "a number") + (" " + " and ".join(parts) if parts else "")

    def accepts(self, value) -> bool:
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            return False
        if not isinstance(value, (int, float)) or value != value:  # NaN is never in range
            return False
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return low_ok and high_ok

    def __call__(self, text: str):
        """The argparse type: parse ``text`` and check the range (``argparse.ArgumentTypeError`` otherwise)."""
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}") from None
        if not self.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value


def at_least(low: float, kind: type = int) -> Bound:
    return Bound(kind, low)


def above(low: float, kind: type = float) -> Bound:
    return Bound(kind, low, open_low=True)


def fraction(open_high: bool = False) -> Bound:
    """A number in [0, 1] (or [0, 1) with ``open_high``)."""
    return Bound(float, 0, 1, open_high=open_high)


def check(values, bounds: Mapping[str, Bound]) -> None:
    """Check the settings named in ``bounds`` (a mapping or an object with those attributes); ``None`` means
    unset and passes. Raises ``ValueError`` naming the first setting out of range."""
    for name, bound in bounds.items():
        value = values.get(name) if isinstance(values, Mapping) else getattr(values, name, None)
        if value is not None and not bound.accepts(value):
            raise ValueError(f"{name} must be {bound.describe()}, got {value!r}")
