"""`union`: overlapping spans merge into one over every flagged character; validated patterns beat NER, which
beats the SLM, for its type; otherwise the longer span wins."""

from __future__ import annotations

import pytest

from tandemlm.errors import ValidationError
from tandemlm.privacy.pseudonymize import Pseudonymizer
from tandemlm.privacy.spans import Span, span_at, union

TEXT = "Contact John Smith at john.smith@example.com today"


def test_pattern_types_an_overlap_even_when_shorter_and_the_merge_covers_both() -> None:
    email = span_at(TEXT, 22, 44, "EMAIL")
    ner = span_at(TEXT, 13, 44, "PERSON", "presidio", 0.85)  # "Smith at john.smith@example.com"
    assert union([[ner], [email]]) == [Span(13, 44, "EMAIL", "Smith at john.smith@example.com", merged=("PERSON",))]


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
    assert union([[a, b]]) == [Span(8, 12, "LOCATION", "John", "presidio", 0.4, ("PERSON",))]
    c = span_at(TEXT, 8, 12, "ORGANIZATION", "presidio", 0.9)
    assert union([[b, c]]) == [Span(8, 12, "ORGANIZATION", "John", "presidio", 0.9, ("LOCATION",))]
    assert union([[b], [b]]) == [b]  # the same finding twice is one span, nothing merged


ADDRESS = "John Smith, 12 Main St called"


def test_overlapping_detectors_mask_the_union_of_their_characters() -> None:
    person = span_at(ADDRESS, 0, 10, "PERSON", "presidio", 0.85)  # "John Smith"
    place = span_at(ADDRESS, 5, 22, "LOCATION")  # "Smith, 12 Main St"
    (merged,) = union([[person], [place]])
    assert merged == Span(0, 22, "LOCATION", "John Smith, 12 Main St", "pattern", 1.0, ("PERSON",))
    assert merged.entities == ("LOCATION", "PERSON")
    assert Pseudonymizer().mask(ADDRESS, [merged]) == "<LOCATION_1> called"


def test_a_chain_of_overlaps_is_one_span_and_touching_spans_stay_apart() -> None:
    text = "aaaa bbbb cccc dddd"
    a, b = span_at(text, 0, 6, "PERSON", "slm", 0.5), span_at(text, 4, 11, "SECRET", "slm", 0.7)
    c = span_at(text, 10, 14, "PERSON", "slm", 0.5)  # overlaps b, not a
    d = span_at(text, 14, 19, "EMAIL")  # starts where c ends: no shared character
    assert union([[a, c], [d, b]]) == [
        Span(0, 14, "SECRET", "aaaa bbbb cccc", "slm", 0.7, ("PERSON",)), d,
    ]  # fmt: skip


def test_nested_spans_keep_the_outer_extent_and_every_type() -> None:
    outer = span_at(TEXT, 8, 44, "PERSON", "presidio", 0.6)  # "John Smith at john.smith@example.com"
    email = span_at(TEXT, 22, 44, "EMAIL")
    inner = span_at(TEXT, 8, 12, "LOCATION", "slm", 0.5)
    (merged,) = union([[outer, inner], [email]])
    assert (merged.start, merged.end, merged.text) == (8, 44, TEXT[8:44])
    assert merged.entities == ("EMAIL", "PERSON", "LOCATION") and merged.source == "pattern"
    assert merged.to_dict()["merged"] == ["PERSON", "LOCATION"] and "merged" not in email.to_dict()


def test_span_checks_its_text() -> None:
    with pytest.raises(ValidationError):
        Span(3, 3, "PERSON", "")
    with pytest.raises(ValidationError):
        Span(0, 4, "PERSON", "abc")
