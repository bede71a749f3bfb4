"""`Span`: one piece of private information found in a text, and `union`, which merges what detectors found.

Overlaps (`union`): spans that overlap, directly or through a chain, merge into one span over the union of
their characters, so nothing any detector flagged is left out of the mask. The merged span takes its type,
source and score from the span that ranks first: a validated pattern (checksum, range or format rules)
beats NER (Presidio/spaCy), which beats the SLM detector; within a rank the longer span wins, then the
higher score, then the earlier one. The other types it absorbed are kept in `merged`, so a policy can act on
the strictest of them. The result never overlaps, sorted by start.
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
    "IP_ADDRESS", "DATE_OF_BIRTH", "URL_TOKEN", "SECRET", "ADDRESS",
    # NATIONAL_ID: a national identity/tax/social-security number of a known format, by its checksum or shape;
    # ID_NUMBER: any other ID-like value right after a cue (record, passport, account, member, licence, policy,
    # case numbers); see privacy/identifiers.py
    "NATIONAL_ID", "ID_NUMBER",
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
    merged: tuple[str, ...] = ()  # the types of the other spans `union` merged into this one

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValidationError(f"a span needs 0 <= start < end, got [{self.start}, {self.end})")
        if len(self.text) != self.end - self.start:
            raise ValidationError(f"span text {self.text!r} does not cover [{self.start}, {self.end})")

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def entities(self) -> tuple[str, ...]:
        """Every type this span stands for: its own, then those merged into it."""
        return (self.entity, *(e for e in dict.fromkeys(self.merged) if e != self.entity))

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"start": self.start, "end": self.end, "entity": self.entity, "text": self.text,
                                  "source": self.source, "score": round(self.score, 3)}  # fmt: skip
        if self.merged:
            out["merged"] = list(self.merged)
        return out


def span_at(text: str, start: int, end: int, entity: str, source: str = "pattern", score: float = 1.0) -> Span:
    """A span over text[start:end]."""
    return Span(start, end, entity, text[start:end], source, score)


def union(groups: Iterable[Iterable[Span]]) -> list[Span]:
    """Merge the spans of several detectors into non-overlapping spans that cover every flagged character:
    each cluster of overlapping spans becomes one span, typed by the module's precedence."""
    spans = sorted((s for group in groups for s in group), key=lambda s: (s.start, -s.end))
    clusters: list[list[Span]] = []
    for span in spans:
        if clusters and span.start < max(s.end for s in clusters[-1]):
            clusters[-1].append(span)
        else:
            clusters.append([span])
    return [_merge(cluster) for cluster in clusters]


def _merge(cluster: list[Span]) -> Span:
    """One span over a cluster of overlapping spans, typed by the span that ranks first."""
    first = min(cluster, key=lambda s: (SOURCE_RANK.get(s.source, len(SOURCE_RANK)), -len(s), -s.score, s.start))
    start, end = cluster[0].start, max(s.end for s in cluster)
    chars = [""] * (end - start)
    for span in cluster:  # the cluster is connected, so together its spans spell every character
        chars[span.start - start : span.end - start] = span.text
    merged = tuple(dict.fromkeys(e for s in (first, *cluster) for e in s.entities if e != first.entity))
    return Span(start, end, first.entity, "".join(chars), first.source, first.score, merged)
