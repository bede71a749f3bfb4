"""`CascadeGuard`: a cheap guard decides when it is sure; the judge only inside its uncertainty band.

The cheap guard's score (a classifier head's P(unsafe), in about a millisecond) settles the verdict when it
lies outside [low, high]: below `low` safe, above `high` unsafe. Inside the band the judge (the edge model,
one or two forward passes) decides. The verdict's `guard` says which did ("cascade:classifier",
"cascade:judge"), so the trace and the benchmark can report the share that reaches the judge.
"""

from __future__ import annotations

from tandemlm.errors import ConfigError
from tandemlm.guard.base import Guard, Kind, Verdict, register


@register("cascade")
class CascadeGuard(Guard):
    """`cheap` decides outside the band [low, high] of its score; `judge` inside it."""

    #: the factory's parameters that name other guards of the config (resolved by the runtime)
    guard_refs = ("cheap", "judge")

    def __init__(
        self, cheap: Guard, judge: Guard, *, low: float = 0.2, high: float = 0.8, name: str = "cascade"
    ) -> None:
        if not 0.0 <= low <= high <= 1.0:
            raise ConfigError(f"guard {name!r}: the band needs 0 <= low <= high <= 1, got low={low}, high={high}")
        self.cheap, self.judge = cheap, judge
        self.low, self.high = low, high
        self.name = name
        self.threshold = high

    def _check(self, text: str, kind: Kind, context: str | None) -> Verdict:
        first = self.cheap.check(text, kind=kind, context=context)
        if self.low <= first.score <= self.high:
            second = self.judge.check(text, kind=kind, context=context)
            return Verdict(second.unsafe, second.score, second.category, f"{self.name}:{self.judge.name}")
        unsafe = first.score > self.high
        category = first.category if unsafe else None
        return Verdict(unsafe, first.score, category, f"{self.name}:{self.cheap.name}")

    def decided_by(self, verdict: Verdict) -> str:
        """The name of the guard that decided `verdict` (one of this cascade's)."""
        return verdict.guard.removeprefix(f"{self.name}:")

    def close(self) -> None:
        self.cheap.close()
        self.judge.close()
