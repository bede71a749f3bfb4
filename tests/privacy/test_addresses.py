"""Street addresses in each country's format, with the exact extent of street, unit, postcode and city; and
sentences with numbers and street words that are not addresses."""

from __future__ import annotations

import pytest

from tandemlm.privacy.addresses import find_addresses
from tandemlm.privacy.detectors import PatternDetector
from tandemlm.privacy.pseudonymize import Pseudonymizer


def addresses(text: str) -> list[str]:
    spans = list(find_addresses(text))
    assert all(text[s.start : s.end] == s.text and s.entity == "ADDRESS" for s in spans)
    return [s.text for s in spans]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # US / CA: number first, unit, city, state, ZIP / postal code
        (
            "HQ: 1600 Amphitheatre Pkwy, Mountain View, CA 94043. Call us",
            "1600 Amphitheatre Pkwy, Mountain View, CA 94043",
        ),
        ("meet at 221B Baker St Apt 4 today", "221B Baker St Apt 4"),
        ("350 Fifth Avenue, New York, NY 10118-0110 is tall", "350 Fifth Avenue, New York, NY 10118-0110"),
        ("send it to 100 Queen St W, Toronto, ON M5H 2N2 by Friday", "100 Queen St W, Toronto, ON M5H 2N2"),
        ("1 Infinite Loop, Cupertino, CA 95014", "1 Infinite Loop, Cupertino, CA 95014"),
        ("she lives at 5 Oak Way now", "5 Oak Way"),
        ("ship to 742 Evergreen Terrace, Springfield, OR", "742 Evergreen Terrace, Springfield, OR"),
        # UK, IE, AU, NZ
        ("Write to 10 Downing Street, London SW1A 2AA please", "10 Downing Street, London SW1A 2AA"),
        ("12 Smith Street, Newtown NSW 2042", "12 Smith Street, Newtown NSW 2042"),
        ("at 29 Merrion Square, Dublin D02 RW50.", "29 Merrion Square, Dublin D02 RW50"),
        ("1 Queen Street, Auckland 1010", "1 Queen Street, Auckland 1010"),
        # Spain and Latin America: type first, number after, floor/door, postcode + city
        ("vivo en Calle de Alcalá 42, 3º B, 28014 Madrid.", "Calle de Alcalá 42, 3º B, 28014 Madrid"),
        ("en C/ Mayor 5 hoy", "C/ Mayor 5"),
        ("Avenida de la Constitución s/n, 41004 Sevilla", "Avenida de la Constitución s/n, 41004 Sevilla"),
        ("Paseo de la Castellana 259", "Paseo de la Castellana 259"),
        # France, Belgium: number first (lower-case type) or after
        ("au 12 rue de la Paix, 75002 Paris, France", "12 rue de la Paix, 75002 Paris"),
        ("123 bd Saint-Germain", "123 bd Saint-Germain"),
        ("25 Rue du Faubourg Saint-Honoré, 75008 Paris", "25 Rue du Faubourg Saint-Honoré, 75008 Paris"),
        ("Rue de la Loi 16, 1000 Bruxelles", "Rue de la Loi 16, 1000 Bruxelles"),
        # Germany, Austria, Switzerland: compounds and two-word streets
        ("wohnt in der Hauptstraße 5, 10115 Berlin.", "Hauptstraße 5, 10115 Berlin"),
        ("Musterstr. 12a", "Musterstr. 12a"),
        ("Berliner Straße 5", "Berliner Straße 5"),
        ("Karl-Marx-Allee 33", "Karl-Marx-Allee 33"),
        ("Mariahilfer Straße 1/2/3, 1060 Wien", "Mariahilfer Straße 1/2/3, 1060 Wien"),
        ("Bahnhofstrasse 1, CH-8001 Zürich", "Bahnhofstrasse 1, CH-8001 Zürich"),
        # Italy
        ("Via Roma 10, 00184 Roma", "Via Roma 10, 00184 Roma"),
        ("Viale Monza 12, 20127 Milano MI", "Viale Monza 12, 20127 Milano MI"),
        ("Piazza Navona 3", "Piazza Navona 3"),
        ("Corso Buenos Aires 12", "Corso Buenos Aires 12"),
        # Netherlands: -gracht/-straat/-weg/-laan/-plein compounds, postcode with letters
        ("Keizersgracht 123, 1015 CJ Amsterdam", "Keizersgracht 123, 1015 CJ Amsterdam"),
        ("Prinsengracht 263-267", "Prinsengracht 263-267"),
        ("Kalverstraat 1", "Kalverstraat 1"),
        ("Stationsweg 4, 2312 AV Leiden", "Stationsweg 4, 2312 AV Leiden"),
        # Portugal and Brazil
        ("Rua Augusta 100, 1100-053 Lisboa", "Rua Augusta 100, 1100-053 Lisboa"),
        ("Avenida Paulista, 1578 - São Paulo, SP, 01310-200", "Avenida Paulista, 1578 - São Paulo, SP, 01310-200"),
        ("Rua das Flores, 23", "Rua das Flores, 23"),
        # Nordics
        ("Drottninggatan 5, 111 51 Stockholm", "Drottninggatan 5, 111 51 Stockholm"),
    ],
)
def test_address_formats_with_exact_extent(text: str, address: str) -> None:
    assert addresses(text) == [address]


@pytest.mark.parametrize(
    "text",
    [
        "I walked 5 streets",
        "Chapter 12 Street Fighter",
        "Route 66 is a famous road",  # a highway name, not a street address: not reported
        "Highway 7 had 20% more traffic",
        "the 3 main roads",
        "10 Best Way to learn Python",
        "Janet has 5 Apple Trees and 3 Park benches",
        "A train leaves at 3 PM",
        "Natalia sold clips to 48 of her friends in April",
        "James writes a 3-page letter to 2 different friends twice a week.",
        "Section 4 Place Value: round 3,456 to the nearest 100",
        "He bought 2 Via tickets for 15 dollars",
        "Spring 2024 semester has 15 weeks",
    ],
)
def test_numbers_and_street_words_that_are_not_addresses(text: str) -> None:
    assert addresses(text) == []


def test_address_through_the_pattern_detector_and_round_trip() -> None:
    text = "Deliver to Calle de Alcalá 42, 3º B, 28014 Madrid or 10 Downing Street, London SW1A 2AA."
    spans = PatternDetector(["ADDRESS"]).detect(text)
    assert [s.entity for s in spans] == ["ADDRESS", "ADDRESS"]
    p = Pseudonymizer()
    masked = p.mask(text, spans)
    assert masked == "Deliver to <ADDRESS_1> or <ADDRESS_2>."
    assert p.restore(masked) == text
