"""Names after a cue (introductions, greetings, labels, titles, signatures) in seven languages; capitalised
words after the same cues that are not names."""

from __future__ import annotations

import pytest

from tandemlm.privacy.detectors import PatternDetector
from tandemlm.privacy.names import find_names
from tandemlm.privacy.pseudonymize import Pseudonymizer


def names(text: str) -> list[str]:
    spans = list(find_names(text))
    assert all(text[s.start : s.end] == s.text and s.entity == "PERSON" for s in spans)
    return [s.text for s in spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # English: introductions, greetings, labels, titles, signatures
        ("I'm Ann.", ["Ann"]),
        ("I am John Smith and I need help", ["John Smith"]),
        ("I'm Sarah from Boston", ["Sarah"]),
        ("Hi, I'm Norea Blomqvist (norea@example.com, phone 0412 345 678).", ["Norea Blomqvist"]),
        ("I am Fern Young - the tenant of flat 4.", ["Fern Young"]),
        ('notify(user, msg="Hello Priya, your parcel is here")', ["Priya"]),  # a string literal starts a sentence
        ("Full name ....... Aoife Byrne\nDate of birth .... 1990", ["Aoife Byrne"]),  # dot leaders after a label
        ("my name is José-María de la Cruz, from Spain", ["José-María de la Cruz"]),
        ("Hi, this is Kate from support", ["Kate"]),
        ("Dear Ms. O'Brien,\nThanks for", ["O'Brien"]),
        ("Dear John,\nplease call", ["John"]),
        ("Hi Tom, can you check", ["Tom"]),
        ("Name: Jane Doe\nAge: 4", ["Jane Doe"]),
        ("Patient: Maria Garcia, 54", ["Maria Garcia"]),
        ("NAME: JOHN SMITH\n", ["JOHN SMITH"]),
        ("From: John Smith <j@x.com>", ["John Smith"]),
        ("Best,\nJohn Smith", ["John Smith"]),
        ("Regards, Anna", ["Anna"]),
        ("Thanks!\n\nPeter Parker\nAcme Corp", ["Peter Parker"]),
        ("— Ludwig van Beethoven", ["Ludwig van Beethoven"]),
        ("Mr. Smith will call", ["Smith"]),
        ("Dr. Jane Goodall spoke", ["Jane Goodall"]),
        ("signed John Hancock", ["John Hancock"]),
        # Spanish
        ("Hola, me llamo Lucía Fernández y tengo una pregunta", ["Lucía Fernández"]),
        ("Estimado Carlos:", ["Carlos"]),
        ("Estimada Sra. García,", ["García"]),
        ("Sr. García y López", ["García y López"]),
        ("Atentamente,\nPablo Ruiz", ["Pablo Ruiz"]),
        # French
        ("je m'appelle Jean-Luc Picard", ["Jean-Luc Picard"]),
        ("Cher Pierre,", ["Pierre"]),
        ("Chère Madame Dupont,", ["Dupont"]),
        ("M. Dupont est là", ["Dupont"]),
        ("Mme Curie", ["Curie"]),
        ("Cordialement,\nÉlodie Martin", ["Élodie Martin"]),
        # German
        ("ich heiße Jürgen", ["Jürgen"]),
        ("Sehr geehrte Frau Schneider,", ["Schneider"]),
        ("Sehr geehrter Herr von Weizsäcker,", ["von Weizsäcker"]),
        ("Frau Müller-Lüdenscheidt", ["Müller-Lüdenscheidt"]),
        ("Prof. Dr. Müller", ["Müller"]),
        ("Mit freundlichen Grüßen\nKlaus Becker", ["Klaus Becker"]),
        # Italian
        ("mi chiamo Giulia", ["Giulia"]),
        ("Gentile Marco,", ["Marco"]),
        ("Caro Paolo,", ["Paolo"]),
        ("Sig.ra Bianchi", ["Bianchi"]),
        ("Gentile Dott.ssa Rossi,", ["Rossi"]),
        # Dutch
        ("ik heet Sanne de Vries", ["Sanne de Vries"]),
        ("Beste Jan,", ["Jan"]),
        ("Geachte heer Jansen,", ["Jansen"]),
        ("Met vriendelijke groet,\nPieter van den Berg", ["Pieter van den Berg"]),
        # Portuguese
        ("meu nome é João", ["João"]),
        ("me chamo Ana Sousa", ["Ana Sousa"]),
        ("Prezado Ricardo,", ["Ricardo"]),
        ("Atenciosamente,\nMariana Costa", ["Mariana Costa"]),
    ],
)
def test_names_after_a_cue(text: str, expected: list[str]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I'm Happy to help",
        "Dear Sir or Madam,",
        "Dear Hiring Manager,",
        "Dear Customer,",
        "I am Python developer",
        "I am Going home",
        "I'm not sure",
        "I am 12 years old",
        "Hello World!",
        "Hi Team, the build is green",
        "Hi All,",
        "To: All Staff",
        "Best regards,\nACME Corp",
        "name: Build and test",
        "Sehr geehrte Damen und Herren,",
        "Liebe Grüße",
        "Estimado Cliente:",
        "Cher Client,",
        "Gentile Cliente,",
        "Beste Klant,",
        "Prezado Cliente,",
        "Natalia sold clips to 48 of her friends",
        "J. M. Smith wrote a book",
        "Best Buy has 5 stores in town",
        "Sr. Engineer position, 5 years",
        "Ich bin Student und wohne hier",
    ],
)
def test_capitalised_words_after_cues_that_are_not_names(text: str) -> None:
    assert names(text) == []


def test_names_through_the_pattern_detector_and_round_trip() -> None:
    text = "Dear Ms. O'Brien,\nI'm Ann Lee from support.\n\nBest,\nAnn Lee"
    spans = PatternDetector(["PERSON"]).detect(text)
    assert [s.text for s in spans] == ["O'Brien", "Ann Lee", "Ann Lee"]
    p = Pseudonymizer()
    masked = p.mask(text, spans)
    assert masked == "Dear Ms. <PERSON_1>,\nI'm <PERSON_2> from support.\n\nBest,\n<PERSON_2>"
    assert p.restore(masked) == text
