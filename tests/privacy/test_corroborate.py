"""NER precision rules (privacy/corroborate.py): implausible shapes are dropped, quasi-identifiers need another
detector's finding nearby; exact, with spans written by hand (no spaCy needed)."""

from __future__ import annotations

import pytest

from tandemlm.privacy.corroborate import corroborated, is_quasi, plausible
from tandemlm.privacy.detectors import Detector, UnionDetector
from tandemlm.privacy.spans import Span, span_at


def ner(text: str, value: str, entity: str = "PERSON", at: int = 0) -> Span:
    start = text.index(value, at)
    return span_at(text, start, start + len(value), entity, "presidio", 0.85)


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("Which is right?\nA. Wrong\nB. Right", "A. Wrong", "PERSON"),  # a multiple-choice option
        ("C. D. is the answer", "D.", "NRP"),  # a lone initial
        ("Return None if empty", "Return None", "PERSON"),  # code words
        ("assert will_it_fly([3, 2])", "will_it_fly([3", "PERSON"),
        ("x = abc", "abc", "ORGANIZATION"),  # lower case
        ("TODO: fix", "TODO", "ORGANIZATION"),  # an acronym
        ("A. Biotin\nB. Niacin", "A. Biotin\nB. Niacin", "PERSON"),  # a list across lines
        ("Movie B. Movie B was long", "Movie B. Movie B", "PERSON"),  # a word twice
        ("a positive integer n. You", "integer n. You", "PERSON"),  # a sentence break
        ("the State of things", "State", "ORGANIZATION"),  # a common title-case noun
    ],
)
def test_implausible_ner_spans_are_rejected(text: str, value: str, entity: str) -> None:
    assert not plausible(ner(text, value, entity), text)


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("I met Lorenzo de Medici", "Lorenzo de Medici", "PERSON"),
        ("She works for Microsoft", "Microsoft", "ORGANIZATION"),  # not a name, but an employer
        ("He lives in São Paulo", "São Paulo", "LOCATION"),
        ("Ask José-María O'Brien", "José-María O'Brien", "PERSON"),
    ],
)
def test_plausible_ner_spans_are_kept(text: str, value: str, entity: str) -> None:
    assert plausible(ner(text, value, entity), text)


def test_quasi_identifiers_alone_are_dropped_and_kept_next_to_a_direct_finding() -> None:
    text = "Vanessa bought 5 apples in Camden."
    spans = [ner(text, "Vanessa"), ner(text, "Camden", "LOCATION")]
    assert all(is_quasi(s) for s in spans) and corroborated(spans) == []
    text = "Vanessa lives in Camden, her phone is +44 20 7946 0018."
    phone = span_at(text, text.index("+44"), len(text) - 1, "PHONE")
    spans = [ner(text, "Vanessa"), ner(text, "Camden", "LOCATION"), phone]
    assert corroborated(spans) == spans


def test_a_far_finding_does_not_vouch_and_a_full_name_keeps_its_own_words() -> None:
    text = "Lorenzo de Medici (Lorenzo) founded an academy in Florence. " + "x " * 200 + "Write to a@b.io"
    email = span_at(text, text.index("a@b.io"), len(text), "EMAIL")
    full, lone, place = ner(text, "Lorenzo de Medici"), ner(text, "Lorenzo", at=5), ner(text, "Florence", "LOCATION")
    kept = corroborated([full, lone, place, email])
    # the full name stays, with its one-word mention; the place is 400 characters from the e-mail
    assert full in kept and lone in kept and place not in kept and email in kept


class Fixed(Detector):
    def __init__(self, spans: list[Span]) -> None:
        self.spans = spans

    def detect(self, text: str) -> list[Span]:
        return list(self.spans)


def test_union_detector_corroborates_across_detectors() -> None:
    text = "Maria from Berlin: IBAN DE89370400440532013000"
    ner_spans = [ner(text, "Maria"), ner(text, "Berlin", "LOCATION")]
    iban = span_at(text, text.index("DE89"), len(text), "IBAN")
    assert UnionDetector([Fixed(ner_spans)]).detect(text) == []
    assert [s.text for s in UnionDetector([Fixed(ner_spans), Fixed([iban])]).detect(text)] == [
        "Maria",
        "Berlin",
        "DE89370400440532013000",
    ]
