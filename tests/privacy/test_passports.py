"""Passport numbers near a cue (privacy/passports.py) and domestic bank accounts (privacy/accounts.py): each
country's shape, cue distance and position, code keys, near misses and look-alikes, and a round trip."""

from __future__ import annotations

import pytest

from tandemlm.privacy import PatternDetector
from tandemlm.privacy.accounts import aba_valid, ccc_valid, find_accounts, nib_valid, rib_valid
from tandemlm.privacy.passports import find_passports, passport_shaped
from tandemlm.privacy.pseudonymize import Pseudonymizer


def passports(text: str) -> list[str]:
    return [s.text for s in find_passports(text)]


def accounts(text: str) -> list[str]:
    return [s.text for s in find_accounts(text)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("My passport, which expires next year, is 534112876.", "534112876"),  # US/UK: nine digits
        ("Documents: C01X00T47 (passport), valid until 2030.", "C01X00T47"),  # DE, before the cue
        ('{"passportNo": "X1234567", "name": "A"}', "X1234567"),  # camelCase key
        ("passport_number: 12AB34567", "12AB34567"),  # FR, snake_case key
        ("traveler.passportNumber=YA1234567", "YA1234567"),  # IT
        ("Travel document: PAA123456", "PAA123456"),  # ES
        ("Mein Reisepass (gültig bis 2031) hat die Nummer C01X00T47.", "C01X00T47"),
        ("Le numéro de mon passeport, délivré à Lyon en 2019, est le 19AB23456.", "19AB23456"),
        ("Mi pasaporte (expedido en 2020) es el PAA345678.", "PAA345678"),
        ("Paspoort van klant: NX8R4K2L7", "NX8R4K2L7"),  # NL
        ("o meu passaporte é o N123456", "N123456"),  # PT
        ("doc_type=passport doc_no=L8989898", "L8989898"),  # AU, the number in the next field
        ("guest:\n  passport:\n    number: 38AB12345\n    expires: 2031-01-01", "38AB12345"),
        ("PASS-NR: C7J9L2M4X", "C7J9L2M4X"),
        ("I need a new passport; my old one (number 534112876) was lost.", "534112876"),
    ],
)
def test_passports_near_a_cue(text: str, value: str) -> None:
    assert passports(text) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "I renewed my passport in 2021 and it cost 145 dollars.",  # a year and a price are no passport
        "The passport office opened 123456 new files in 2019.",  # a six-digit count
        "Passport: not yet issued. Phone: 612345678.",  # the next sentence's phone
        '{"passport": null, "phone": "612345678"}',  # another field's value
        "Can you pass 123456789 to the function?",  # "pass" the verb
        "boarding pass 123456789",  # a ticket, not a passport
        "She passed 20 exams in 2019 with 123456789 points.",
        "Janet's ducks lay 16 eggs per day; passport photos cost 15 dollars.",  # GSM8K numbers
    ],
)
def test_not_passports(text: str) -> None:
    assert passports(text) == []


@pytest.mark.parametrize(
    ("token", "shaped"),
    [("123456789", True), ("A12345678", True), ("C01X00T47", True), ("12AB34567", True), ("PAA123456", True),
     ("YA1234567", True), ("NX8R4K2L7", True), ("N123456", True), ("2021", False), ("123456", False),
     ("hello1234", False), ("AB-12", False)],
)  # fmt: skip
def test_passport_shapes(token: str, shaped: bool) -> None:
    assert passport_shaped(token) is shaped


def test_account_checksums() -> None:
    assert ccc_valid("2100 0418 45 0200051332") and not ccc_valid("2100 0418 46 0200051332")
    assert rib_valid("30004 00550 00012345678 40") and not rib_valid("30004 00550 00012345678 41")
    assert rib_valid("30004000550ABCDEFGHIJK12") is rib_valid("30004000550ABCDEFGHIJK12")  # letters read as digits
    assert nib_valid("0033 0000 45454545454 91") and not nib_valid("0033 0000 45454545454 92")
    assert aba_valid("021000021") and aba_valid("011000015") and not aba_valid("021000022")
    assert not ccc_valid("0" * 20) and not nib_valid("1" * 21)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Número de cuenta: 2100 0418 45 0200051332", "2100 0418 45 0200051332"),  # ES CCC
        ("cuenta 21000418450200051332 para la nómina", "21000418450200051332"),
        ("RIB : 30004 00550 00012345678 40", "30004 00550 00012345678 40"),  # FR RIB
        ("NIB 0033 0000 45454545454 91", "0033 0000 45454545454 91"),  # PT NIB
        ("Payroll needs 39-58-45 53182457 by Friday.", "53182457"),  # UK sort code + account, no cue
        ("sort code 12-34-56, account 12345678", "12345678"),
        ("My BSB is 062-000 and my account is 12345678.", "12345678"),  # AU
        ("BSB/acct: 062-000 / 1234 5678", "1234 5678"),
        ("routing 021000021 account 9876543210", "9876543210"),  # US ABA checksum
    ],
)
def test_domestic_accounts(text: str, value: str) -> None:
    assert accounts(text) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "Order 12-34-56 pens, 3 boxes.",  # no account after the code
        "A store sold 021000021 items in 12 days.",  # nine digits, no bank word, no account after
        "He ran 123-456 meters, then 1234567 more.",  # a BSB shape without a bank word
        "2100 0418 46 0200051332",  # a CCC with a wrong control digit
        "The 3 classes have 062-000 123456 students",  # no bank word
    ],
)
def test_not_accounts(text: str) -> None:
    assert accounts(text) == []


def test_round_trip_passport_and_accounts() -> None:
    text = ("Passenger Ann Lee, passport C01X00T47 (expires 2030).\n"
            "Refund to sort code 12-34-56, account 12345678, or RIB 30004 00550 00012345678 40.")  # fmt: skip
    spans = PatternDetector(["ID_NUMBER"]).detect(text)
    assert [s.text for s in spans] == ["C01X00T47", "12-34-56", "12345678", "30004 00550 00012345678 40"]
    p = Pseudonymizer()
    masked = p.mask(text, spans)
    assert "C01X00T47" not in masked and "12345678" not in masked and "00012345678" not in masked
    assert p.restore(masked) == text


def test_long_inputs_stay_fast() -> None:
    import time

    for text in (
        "12-34-56 " * 3000,
        "BSB 062-000 " * 2000,
        "passport number " * 1000 + "X1234567",
        "(passport) " * 2000,
    ):
        start = time.perf_counter()
        accounts(text), passports(text)
        assert time.perf_counter() - start < 2.0, text[:30]
