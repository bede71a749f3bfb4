"""Full names by the record around them (privacy/name_context.py): a role, "in the name of", an ID beside
the name, a table's name column, a signature line; and what they leave alone."""

from __future__ import annotations

import pytest

from tandemlm.privacy.detectors import PatternDetector
from tandemlm.privacy.names import find_names
from tandemlm.privacy.pseudonymize import Pseudonymizer


def names(text: str) -> list[str]:
    return [s.text for s in find_names(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The customer Ann Lee called twice.", ["Ann Lee"]),  # a role
        ("El socio Ester Velasco se ha mudado.", ["Ester Velasco"]),
        ("The account holder is Dmitri Volkov, please confirm.", ["Dmitri Volkov"]),  # a copula after the role
        ("Il bonifico è intestato a Chiara Lombardi.", ["Chiara Lombardi"]),
        ("un chèque à l'ordre de Margaux Petit", ["Margaux Petit"]),
        ("unser Mitglied Theodor Paffrath ist umgezogen", ["Theodor Paffrath"]),
        ("l'adhérent Théodore Leduc nous écrit", ["Théodore Leduc"]),
        ("Next of kin: Pranav Hari", ["Pranav Hari"]),
        ("je voudrais réserver au nom de Thibaut Normand, merci", ["Thibaut Normand"]),  # in the name of
        ("queria reservar em nome de Petra Cunha Machado, obrigado", ["Petra Cunha Machado"]),
        ("ik wil reserveren op naam van Jelte van Gent", ["Jelte van Gent"]),
        ("Te reenvío la ficha de Florencia Serna Dávila mañana", ["Florencia Serna Dávila"]),
        ("document mismatch for Amber Peck (id=537934691)", ["Amber Peck"]),  # an ID beside the name
        ("Employee EMP-15355 (Jeremy Reed) is on leave", ["Jeremy Reed"]),
        ("NIF 228604133 já registado (Rui Tavares)", ["Rui Tavares"]),
        ("Name on the account: Amber Campos.", ["Amber Campos"]),  # a label that ends in ':'
        ("'Brittany Hopkins, your membership has lapsed'", ["Brittany Hopkins"]),  # addressed
        ("ID | Name | Team\n4411 | Amber Carey | Ops", ["Amber Carey"]),  # a table's name column
        ("Thanks for the help.\n\nTroy Rice", ["Troy Rice"]),  # a signature line ends the text
        ("See you.\n\nGabriela Santos\nTel. 21 226 5798", ["Gabriela Santos"]),  # before a contact line
        ("Abraço,\nRenata", ["Renata"]),  # after a closing with a comma
    ],
)
def test_names_by_context(text: str, expected: list[str]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The customer service team answers in 24 hours.",  # a role word, no name after it
        "The member State of the Union",  # one capitalised word
        "Tickets for New Year 2024 are sold out",  # the sentence goes on after the capitalised words
        "Order 55123 for Acme Corp",  # a preposition and an ID, but no comma or bracket around the name
        "Results:\n\nGreen Team\nwon 3 games",  # a line of capitalised words that more text follows
        "Chapter 1\n\nThe End",  # NOT_NAMES
    ],
)
def test_not_names_by_context(text: str) -> None:
    assert names(text) == []


def test_round_trip() -> None:
    text = "Member M-2001-30601 (Brent Knox) moved. The customer Brent Knox asked for a refund.\n\nAnn Lee"
    spans = PatternDetector(["PERSON", "ID_NUMBER"]).detect(text)
    assert [s.text for s in spans] == ["M-2001-30601", "Brent Knox", "Brent Knox", "Ann Lee"]
    p = Pseudonymizer()
    masked = p.mask(text, spans)
    assert "Brent" not in masked and "Ann Lee" not in masked
    assert p.restore(masked) == text
