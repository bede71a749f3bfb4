"""`Span`: one piece of private information found in a text, and `union`, which merges what detectors found.

Precedence on overlap (`union`): a span from a validated pattern (checksum, range or format rules) beats
one from NER (Presidio/spaCy), which beats one from the SLM detector; between spans of the same rank the
longer one wins, then the higher score, then the earlier one. The result never overlaps, sorted by start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tandemlm.errors import ValidationError

#: Detector sources from most to least trusted, for `union`'s precedence.
SOURCE_RANK: dict[str, int] = {"pattern": 0, "presidio": 1, "slm": 2}

#: Entity types the detectors emit (a detector may add others; placeholders use the type name).
ENTITIES: tuple[str, ...] = (
    "PERSON", "LOCATION", "ORGANIZATION", "NRP", "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN",
    "IP_ADDRESS", "DATE_OF_BIRTH", "URL_TOKEN", "SECRET",
)  # fmt: skip


@dataclass(frozen=True)
class Span:
    """text[start:end] is a private value of type `entity`, found by `source` with confidence `score`."""

    start: int
    end: int
    entity: str
    text: str
    source: str = "pattern"
    score: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValidationError(f"a span needs 0 <= start < end, got [{self.start}, {self.end})")
        if len(self.text) != self.end - self.start:
            raise ValidationError(f"span text {self.text!r} does not cover [{self.start}, {self.end})")

    def __len__(self) -> int:
        return self.end - self.start

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "entity": self.entity, "text": self.text,
                "source": self.source, "score": round(self.score, 3)}  # fmt: skip


def span_at(text: str, start: int, end: int, entity: str, source: str = "pattern", score: float = 1.0) -> Span:
    """A span over text[start:end]."""
    return Span(start, end, entity, text[start:end], source, score)


def union(groups: Iterable[Iterable[Span]]) -> list[Span]:
    """Merge the spans of several detectors into non-overlapping spans, by the module's precedence."""
    ranked = sorted(
        (s for group in groups for s in group),
        key=lambda s: (SOURCE_RANK.get(s.source, len(SOURCE_RANK)), -len(s), -s.score, s.start),
    )
    kept: list[Span] = []
    for span in ranked:
        if not any(span.overlaps(k) for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)
