"""`ScriptedGuard`: a test double that flags given words, exactly and instantly (as `ScriptedModel` answers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tandemlm.guard.base import Guard, Kind, Verdict, register


@register("scripted")
class ScriptedGuard(Guard):
    """Score 1.0 when the text holds one of `words` (case-insensitive), else 0.0; or `score(text)` when given.
    `error`: raise a RuntimeError with this message on every check (a guard that fails). Every check is kept in
    `seen` as (text, kind, context), for assertions."""

    def __init__(
        self,
        words: Sequence[str] = (),
        *,
        category: str | None = "S1",
        score: Callable[[str], float] | None = None,
        error: str | None = None,
        threshold: float = 0.5,
        name: str = "scripted",
    ) -> None:
        self.words = tuple(w.lower() for w in words)
        self.category = category
        self._score = score
        self.error = error
        self.threshold = threshold
        self.name = name
        self.seen: list[tuple[str, Kind, str | None]] = []

    def _check(self, text: str, kind: Kind, context: str | None) -> Verdict:
        self.seen.append((text, kind, context))
        if self.error is not None:
            raise RuntimeError(self.error)
        if self._score is not None:
            return self.verdict(self._score(text), self.category)
        return self.verdict(float(any(w in text.lower() for w in self.words)), self.category)
