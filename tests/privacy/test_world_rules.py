"""The general rules added for multinational text (issue 11): name fields, cue tolerance (glued and underscored
connectors, possessives, a cue earlier in the clause, roles, table headers), postcode-anchored addresses,
secrets in prose, TFN/PAN, log-field phones; each on valid, near-miss and look-alike inputs, written fresh
(not the benchmark's phrasing)."""

from __future__ import annotations

import pytest

from tandemlm.privacy.addresses import find_addresses
from tandemlm.privacy.detectors import PatternDetector
from tandemlm.privacy.identifiers import find_cued_ids
from tandemlm.privacy.name_fields import is_name_key
from tandemlm.privacy.names import find_names
from tandemlm.privacy.pseudonymize import Pseudonymizer
from tandemlm.privacy.secrets import find_assigned_secrets

DETECT = PatternDetector()


def found(text: str) -> list[tuple[str, str]]:
    return [(s.entity, s.text) for s in DETECT.detect(text)]


# ---- names in fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('user = User(full_name="Ingrid Bergström", age=41)', "Ingrid Bergström"),
        ("patient:\n  nachname: Oberhuber\n  vorname: Theresia\n", "Oberhuber"),
        ('{"apellidos": "García Márquez", "dni": null}', "García Márquez"),
        ("PATIENT_NAME=KOWALSKI\n", None),  # three letters or more in capitals: kept only from a label
        ("Cognome e nome: Esposito, Gennaro\nReparto: 3", "Esposito, Gennaro"),
        ("emergencyContact: 'Pieter de Vries'", "Pieter de Vries"),
        ("<td>achternaam</td> = Jansen", None),
    ],
)
def test_names_as_field_values(text: str, name: str | None) -> None:
    names = [s.text for s in find_names(text)]
    if name is not None:
        assert name in names


@pytest.mark.parametrize(
    "text",
    [
        'product_name = "Widget Pro"',
        "hostname: Web Server 2",
        'db_name = "Orders"',
        'username: "Admin"',
        "name: Smith is on leave until May",  # prose after the capitalised words
        'file_name = "Report Final.pdf"',
        'name="Orders"',
    ],
)
def test_fields_that_do_not_hold_a_person(text: str) -> None:
    assert list(find_names(text)) == []


def test_name_keys() -> None:
    assert all(map(is_name_key, ["customerName", "first_name", "Nachname", "card_holder", "nome_completo"]))
    assert all(map(is_name_key, ["guardian", "Kontoinhaber", "titolare", "rekeninghouder", "tuteur"]))
    assert [s.text for s in find_names("pupil:\n  guardian: Siobhan Walsh\n")] == ["Siobhan Walsh"]
    assert not any(map(is_name_key, ["company_name", "userName2", "hostname", "display", "namespace"]))


# ---- identifiers by cue -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"passportNo": "K8812034"}', "K8812034"),  # camelCase, glued connector
        ("paspoortnummer: NXR4P07K1", "NXR4P07K1"),
        ("Passnummer C01X00T47", "C01X00T47"),
        ("passaporto: il mio è YA5540123", "YA5540123"),  # possessive and copula between cue and value
        ("o passaporte dele é CB778812", "CB778812"),
        ("member_no=00812345", "00812345"),  # underscore, key=value
        ("Staff 4471902 (Ana Ruiz) starts Monday", "4471902"),  # a number right after a role
        ("Client Jan Smit (nr. KL-2231-09) called", "KL-2231-09"),  # the cue earlier in the clause
        ("Kontonummer 0532013000 bei der Sparkasse", "0532013000"),
        ("UHID: AB77120034", "AB77120034"),
        ("coordinate bancarie: 0542811101000000123456", "0542811101000000123456"),
    ],
)
def test_cued_identifiers_in_many_phrasings(text: str, value: str) -> None:
    assert value in [s.text for s in find_cued_ids(text)]


def test_table_headers_cue_their_columns() -> None:
    text = "| Mitarbeiter-Nr. | Name | Abt. |\n|---|---|---|\n| 0071234 | Kai Berg | IT |\n| 0071299 | Li Wu | HR |"
    assert [s.text for s in find_cued_ids(text)] == ["0071234", "0071299"]
    table = "| item | qty | price |\n|---|---|---|\n| pears | 12500 | 3 |"
    assert list(find_cued_ids(table)) == []


@pytest.mark.parametrize(
    "text",
    [
        "A customer bought 15000 items last year.",  # a count before its noun
        "Our 3 employees earn 45000 a year",
        "The student scored 12345 points",
        "Question no. 5: a member of the club is 12 years old",  # connector with a small number
        "In 2024 the passport office processed 150,000 applications",
        "The account grew by 25000 dollars",
        "The employee 12000 dollars richer left",  # a unit after the number
        "Ticket no. 12345 is valid",  # no cue
    ],
)
def test_quantities_near_cue_words_are_not_identifiers(text: str) -> None:
    assert list(find_cued_ids(text)) == []


def test_tfn_and_pan_validate_and_a_year_or_count_does_not() -> None:
    assert found("TFN: 123 456 782") == [("NATIONAL_ID", "123 456 782")]
    assert found("PAN ABCPE1234F on file") == [("NATIONAL_ID", "ABCPE1234F")]
    assert found("In 2019 they sold 123456789 units") == []  # a quantity, though TFN-valid
    assert found("The code ABCDE1234F is a PAN of no person") == []  # fourth letter is no holder type


# ---- addresses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Ship it to 14 Quarry Bank, Little Hadham, SG11 2EG please", "14 Quarry Bank, Little Hadham, SG11 2EG"),
        ("address: 7/22 Wattle Nook, Mt. Barker, SA, 5251", "7/22 Wattle Nook, Mt. Barker, SA, 5251"),
        ("Mailing address: Flat 3\n9 Orchard Mews\nBath\nBA1 5QT\nThanks", "Flat 3\n9 Orchard Mews\nBath\nBA1 5QT"),
        ("Addr: H.No. 4-5, Gandhi Chowk, Nagpur-440001", "H.No. 4-5, Gandhi Chowk, Nagpur-440001"),
        ("Adres: Kerkstraat 12\n1017 GB\nAmsterdam\n", "Kerkstraat 12\n1017 GB\nAmsterdam"),
        ("Indirizzo: Contrada Pozzo, 5, 90141, Palermo (PA)", "Contrada Pozzo, 5, 90141, Palermo (PA)"),
        ("habite au chemin des Vignes, 84100 Orange", "chemin des Vignes, 84100 Orange"),
        ("wohnhaft Hoher-Ring 4, 01067 Dresden.", "Hoher-Ring 4, 01067 Dresden"),
    ],
)
def test_addresses_anchored_on_a_postcode(text: str, address: str) -> None:
    assert address in [s.text for s in find_addresses(text)]


@pytest.mark.parametrize(
    "text",
    [
        "James has 5 Dogs, Cats 1200 in total.",
        "In 2019, Toyota sold 500 Cars, Ford 12000.",
        "Chapter 12 Green Fields, Page 3401",
        "Add 3 Red Apples, then 12500 more",
        "Flat 3\nThe rent is 1200 a month",
    ],
)
def test_number_and_capitals_without_an_address_shape_are_not_addresses(text: str) -> None:
    assert list(find_addresses(text)) == []


# ---- secrets in prose, phones in logs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("btw the wifi password for the guest network is Tr0ub4dor&3, don't share", "Tr0ub4dor&3"),
        ("Das Passwort für den Router ist Sonne#2024.", "Sonne#2024"),
        ("a senha do cofre é 8842-Kx!", "8842-Kx!"),
        ('{"mot_de_passe": "Chat noir 77"}', "Chat noir 77"),
        ("New password - Sunshine1987!", "Sunshine1987!"),
        ("the password (Sunshine1987!) expires", "Sunshine1987!"),
        ("pw: Sunshine1987!", "Sunshine1987!"),
        ("A sua palavra-passe: Sunshine1987!", "Sunshine1987!"),
    ],
)
def test_secrets_in_prose_and_split_keys(text: str, secret: str) -> None:
    assert [s.text for s in find_assigned_secrets(text)] == [secret]


@pytest.mark.parametrize(
    "text",
    [
        "The password is stored hashed.",
        "The password for the wifi is changed weekly.",
        "def login(token: str) -> bool:",
        "the token is self.token",
        "The password reset takes 2 minutes.",
        "Choose a password with 8 characters.",
    ],
)
def test_prose_about_secrets_is_not_a_secret(text: str) -> None:
    assert list(find_assigned_secrets(text)) == []


def test_phones_in_log_fields_but_not_arithmetic() -> None:
    assert found('level=info msg="otp" to=+351 912 345 678 ok') == [("PHONE", "+351 912 345 678")]
    assert found("Ring me on 06.12345678 tonight") == [("PHONE", "06.12345678")]
    assert found("x = 5551234567 + 2") == []
    assert found("It costs 0.75 dollars") == []


def test_round_trip_restores_every_kind() -> None:
    text = (
        'contact:\n  name: Ingrid Bergström\n  passport_no: "K8812034"\n  address: "14 Quarry Bank, Little Hadham, '
        'SG11 2EG"\nNote: the alarm password is Tr0ub4dor&3, TFN 123 456 782.'
    )
    spans = DETECT.detect(text)
    kinds = {s.entity for s in spans}
    assert {"PERSON", "ID_NUMBER", "ADDRESS", "SECRET", "NATIONAL_ID"} <= kinds
    pseudo = Pseudonymizer()
    masked = pseudo.mask(text, spans)
    for value in ("Ingrid", "K8812034", "Quarry", "Tr0ub4dor", "456 782"):
        assert value not in masked
    assert pseudo.restore(masked) == text
