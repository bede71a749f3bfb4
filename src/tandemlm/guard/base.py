"""`Guard`: one small interface for every screen of text going into or out of a model (issue 12).

A guard answers one question about one text: is it unsafe (a harmful request, an unsafe answer, a
prompt injection), how sure it is, and which hazard category. Guards run on the edge, before anything
leaves the device. `Guarded` (guard/guarded.py) puts them around any `LanguageModel`; the CLI and the
benchmark call `check` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tandemlm.errors import ConfigError

Kind = Literal["input", "output"]
KINDS: tuple[str, ...] = ("input", "output")


@dataclass(frozen=True)
class Verdict:
    """A guard's answer: `unsafe` is `score >= threshold` for the guard that gave it; `score` is P(unsafe)."""

    unsafe: bool
    score: float
    category: str | None
    guard: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"a verdict's score is a probability in [0, 1], got {self.score}")


class Guard:
    """Base class of guards. A guard implements `_check`; `check` validates the arguments once for all."""

    name: str = "guard"
    threshold: float = 0.5

    def check(self, text: str, *, kind: Kind = "input", context: str | None = None) -> Verdict:
        """Screen `text` (a request when `kind` is "input", an answer when "output"; `context` is the
        request an output answers, for guards that read both)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        return self._check(text, kind, context)

    def _check(self, text: str, kind: Kind, context: str | None) -> Verdict:
        raise NotImplementedError

    def verdict(self, score: float, category: str | None = None) -> Verdict:
        """The verdict for P(unsafe) = `score` under this guard's threshold."""
        score = min(1.0, max(0.0, float(score)))
        unsafe = score >= self.threshold
        return Verdict(unsafe=unsafe, score=score, category=category if unsafe else None, guard=self.name)

    def close(self) -> None:
        """Release what the guard holds (a model handle is owned by the runtime, not the guard)."""


GuardFactory = Callable[..., Guard]
GUARDS: dict[str, GuardFactory] = {}


def register(kind: str) -> Callable[[GuardFactory], GuardFactory]:
    """Add a guard class to the registry under `kind`, the name a config's `guard.type` uses."""

    def add(factory: GuardFactory) -> GuardFactory:
        if kind in GUARDS:
            raise ValueError(f"guard type {kind!r} is registered twice")
        GUARDS[kind] = factory
        return factory

    return add


def guard_factory(kind: str) -> GuardFactory:
    """The registered guard class for `kind`, or a ConfigError naming the known ones."""
    try:
        return GUARDS[kind]
    except KeyError:
        raise ConfigError(f"unknown guard type {kind!r}; known: {', '.join(sorted(GUARDS)) or 'none'}") from None
