"""Pseudonyms: consistent, typed, restorable exactly, also from a stream split anywhere."""

from __future__ import annotations

import pytest

from tandemlm.privacy.detectors import PatternDetector
from tandemlm.privacy.patterns import card_valid, iban_valid
from tandemlm.privacy.pseudonymize import Pseudonymizer
from tandemlm.privacy.spans import span_at

TEXT = "Mail ann@example.com or bob@example.com, card 4111 1111 1111 1111, again ann@example.com"


def masked(p: Pseudonymizer, text: str = TEXT) -> str:
    return p.mask(text, PatternDetector().detect(text))


def test_typed_placeholders_same_value_same_placeholder_and_exact_restore() -> None:
    p = Pseudonymizer()
    out = masked(p)
    assert out == "Mail <EMAIL_1> or <EMAIL_2>, card <CREDIT_CARD_1>, again <EMAIL_1>"
    assert p.restore(out) == TEXT
    assert "ann@example.com" not in out


def test_normalised_spellings_share_a_placeholder() -> None:
    p = Pseudonymizer()
    a = p.mask("x 4111 1111 1111 1111", [span_at("x 4111 1111 1111 1111", 2, 21, "CREDIT_CARD")])
    b = p.mask("4111-1111-1111-1111", [span_at("4111-1111-1111-1111", 0, 19, "CREDIT_CARD")])
    c = p.mask("ANN@example.com", [span_at("ANN@example.com", 0, 15, "EMAIL")])
    d = p.mask("ann@example.com", [span_at("ann@example.com", 0, 15, "EMAIL")])
    assert (a, b, c, d) == ("x <CREDIT_CARD_1>", "<CREDIT_CARD_1>", "<EMAIL_1>", "<EMAIL_1>")


def test_ten_and_more_placeholders_restore_without_prefix_confusion() -> None:
    p = Pseudonymizer()
    text = " ".join(f"u{i}@example.com" for i in range(12))
    out = masked(p, text)
    assert "<EMAIL_12>" in out and p.restore(out) == text


@pytest.mark.parametrize("cut", range(1, 30))
def test_stream_restore_split_anywhere_never_emits_a_partial_placeholder(cut: int) -> None:
    p = Pseudonymizer()
    out = masked(p)
    answer = f"Sure: {out} -- <EMAIL_2>."
    restorer = p.restorer()
    pieces = [answer[i : i + cut] for i in range(0, len(answer), cut)]
    emitted = [restorer.feed(piece) for piece in pieces] + [restorer.flush()]
    assert "".join(emitted) == p.restore(answer)
    for e in emitted:
        assert "<EMAIL" not in e and "<CRED" not in e and not e.endswith("<")


def test_stream_restore_of_the_split_in_the_issue() -> None:
    p = Pseudonymizer()
    p.mask("Hi Ann", [span_at("Hi Ann", 3, 6, "PERSON")])
    r = p.restorer()
    assert [r.feed("Hello <PER"), r.feed("SON_1>!"), r.flush()] == ["Hello ", "Ann!", ""]
    r = p.restorer()
    assert [r.feed("a <PERSON_9"), r.feed("> b"), r.flush()] == ["a <PERSON_9", "> b", ""]  # unknown: as written
    assert [r.feed("<PER"), r.flush()] == ["", "<PER"]  # the end of a stream releases what is held


def test_surrogates_are_realistic_valid_and_restored() -> None:
    p = Pseudonymizer(surrogates=True)
    text = "Card 4111 1111 1111 1111, IBAN DE89370400440532013000, mail ann@example.com"
    out = masked(p, text)
    card, iban = p.stand_in("CREDIT_CARD", "4111111111111111"), p.stand_in("IBAN", "DE89370400440532013000")
    assert card_valid(card) and iban_valid(iban) and "user1@example.org" in out
    assert "4111" not in out and "DE89" not in out and p.restore(out) == text


def test_mask_known_catches_undetected_repeats_and_copy_is_independent() -> None:
    p = Pseudonymizer()
    p.mask("I am Ann Lee", [span_at("I am Ann Lee", 5, 12, "PERSON")])
    assert p.mask_known("Ann Lee wrote; Ann Leeway did not") == "<PERSON_1> wrote; Ann Leeway did not"
    branch = p.copy()
    branch.stand_in("PERSON", "Bo")
    assert "<PERSON_2>" in branch.originals and "<PERSON_2>" not in p.originals
