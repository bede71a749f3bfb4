"""Validated patterns: each type on valid values and on near misses that must not be reported."""

from __future__ import annotations

import pytest

from tandemlm.privacy.detectors import PatternDetector
from tandemlm.privacy.patterns import card_valid, iban_valid, looks_random, luhn_valid, ssn_valid

DETECT = PatternDetector()


def found(text: str) -> list[tuple[str, str]]:
    return [(s.entity, s.text) for s in DETECT.detect(text)]


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("write to Jane.Doe+bank@mail.example.co.uk today", "EMAIL", "Jane.Doe+bank@mail.example.co.uk"),
        ("call +44 20 7946 0958 now", "PHONE", "+44 20 7946 0958"),
        ("call +49 30 901820 now", "PHONE", "+49 30 901820"),
        ("or (212) 555-0143 at home", "PHONE", "(212) 555-0143"),
        ("card 4111 1111 1111 1111 please", "CREDIT_CARD", "4111 1111 1111 1111"),
        ("card 5500-0000-0000-0004 please", "CREDIT_CARD", "5500-0000-0000-0004"),
        ("amex 378282246310005.", "CREDIT_CARD", "378282246310005"),
        ("to DE89 3704 0044 0532 0130 00 please", "IBAN", "DE89 3704 0044 0532 0130 00"),
        ("to GB82WEST12345698765432.", "IBAN", "GB82WEST12345698765432"),
        ("SSN 123-45-6788 on file", "US_SSN", "123-45-6788"),
        ("my social security number is 123456788", "US_SSN", "123456788"),
        ("from 192.168.10.20 again", "IP_ADDRESS", "192.168.10.20"),
        ("from 2001:db8::8a2e:370:7334 again", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
        ("I was born on March 3, 1985 in Ohio", "DATE_OF_BIRTH", "March 3, 1985"),
        ("DOB: 04/12/1990", "DATE_OF_BIRTH", "04/12/1990"),
        ("get https://x.io/a?user=bob&access_token=abcd1234efgh&x=1 now", "URL_TOKEN", "abcd1234efgh"),
        ("clone https://bob:hunter22@git.example.com/r.git", "URL_TOKEN", "hunter22"),
        ("key sk-proj-abcdefghijklmnop1234567890 set", "SECRET", "sk-proj-abcdefghijklmnop1234567890"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "SECRET", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "SECRET", "AKIAIOSFODNN7EXAMPLE"),
        ("slack xoxb-123456789012-abcdefghijkl", "SECRET", "xoxb-123456789012-abcdefghijkl"),
        ("password: s3cr3tPass! ok", "SECRET", "s3cr3tPass!"),
        ("blob Zx9qL2mN8vB4cX7kJ3hG5fD1 end", "SECRET", "Zx9qL2mN8vB4cX7kJ3hG5fD1"),
    ],
)
def test_valid_values_are_found_with_their_exact_span(text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(text)
    span = next(s for s in DETECT.detect(text) if s.text == value)
    assert text[span.start : span.end] == value and span.source == "pattern"


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("card 4111 1111 1111 1112 please", "CREDIT_CARD"),  # Luhn fails
        ("order 1234567890123456 shipped", "CREDIT_CARD"),  # Luhn fails
        ("to DE89 3704 0044 0532 0130 01 please", "IBAN"),  # mod-97 fails
        ("to DE8937040044053201300 please", "IBAN"),  # wrong length for DE
        ("SSN 000-12-3456", "US_SSN"),  # area 000
        ("SSN 666-12-3456", "US_SSN"),  # area 666
        ("SSN 912-12-3456", "US_SSN"),  # area 9xx
        ("SSN 123-00-4567", "US_SSN"),  # group 00
        ("SSN 078-05-1120", "US_SSN"),  # the Woolworth wallet card
        ("invoice 123456788 paid", "US_SSN"),  # nine bare digits without context
        ("version 1.2.3 and 300.1.1.1", "IP_ADDRESS"),
        ("the meeting is on March 3, 1985", "DATE_OF_BIRTH"),  # a date, not a birth date
        ("I was born. The meeting is on 2024-05-01", "DATE_OF_BIRTH"),  # context in another sentence
        ("see https://x.io/a?page=2&lang=en", "URL_TOKEN"),
        ("the word internationalization is long", "SECRET"),
        ("call 555-0143 maybe", "PHONE"),  # too short to be a valid number
        ("mail me at john at example dot com", "EMAIL"),
    ],
)
def test_near_misses_are_not_reported(text: str, entity: str) -> None:
    assert entity not in [e for e, _ in found(text)]


def test_validators() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert card_valid("4111-1111-1111-1111") and not card_valid("4111-1111 1111-1111")  # mixed separators
    assert iban_valid("FR14 2004 1010 0505 0001 3M02 606") and not iban_valid("FR14 2004 1010 0505 0001 3M02 607")
    assert ssn_valid("123", "45", "6788") and not ssn_valid("123", "45", "0000")
    assert looks_random("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b") and not looks_random("a" * 40)


def test_entity_subset_and_unknown_entity() -> None:
    only = PatternDetector(["EMAIL"])
    assert [s.entity for s in only.detect("a@b.io 4111 1111 1111 1111")] == ["EMAIL"]
    with pytest.raises(ValueError, match="cannot find"):
        PatternDetector(["SHOE_SIZE"])
