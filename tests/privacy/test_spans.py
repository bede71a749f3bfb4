"""`union`: validated patterns beat NER, which beats the SLM; otherwise the longer span wins."""

from __future__ import annotations

import pytest

from tandemlm.errors import ValidationError
from tandemlm.privacy.spans import Span, span_at, union

TEXT = "Contact John Smith at john.smith@example.com today"


def test_pattern_beats_ner_on_overlap_even_when_shorter() -> None:
    email = span_at(TEXT, 22, 44, "EMAIL")
    ner = span_at(TEXT, 17, 44, "PERSON", "presidio", 0.85)  # "Smith at john.smith@example.com"
    assert union([[ner], [email]]) == [email]


def test_longer_wins_within_a_rank_and_result_is_sorted_and_disjoint() -> None:
    first = span_at(TEXT, 8, 12, "PERSON", "presidio", 0.9)
    full = span_at(TEXT, 8, 18, "PERSON", "presidio", 0.6)
    email = span_at(TEXT, 22, 44, "EMAIL")
    slm = span_at(TEXT, 45, 50, "SECRET", "slm", 0.5)
    out = union([[email, slm], [first, full]])
    assert out == [full, email, slm]


def test_ner_beats_slm_and_score_breaks_ties() -> None:
    a = span_at(TEXT, 8, 12, "PERSON", "slm", 0.5)
    b = span_at(TEXT, 8, 12, "LOCATION", "presidio", 0.4)
    assert union([[a, b]]) == [b]
    c = span_at(TEXT, 8, 12, "ORGANIZATION", "presidio", 0.9)
    assert union([[b, c]]) == [c]


def test_span_checks_its_text() -> None:
    with pytest.raises(ValidationError):
        Span(3, 3, "PERSON", "")
    with pytest.raises(ValidationError):
        Span(0, 4, "PERSON", "abc")
