"""Delimited tables (CSV, TSV, `;`, markdown): a cell is masked by its column's header; prose with commas and
lists of numbers are not tables."""

from __future__ import annotations

import pytest
from faker import Faker

from tandemlm.privacy import PatternDetector
from tandemlm.privacy.tables import Cell, header_words, table_cells

DETECT = PatternDetector()


def found(text: str) -> set[str]:
    return {s.text for s in DETECT.detect(text)}


def test_table_cells_pair_each_value_with_its_header_and_offset() -> None:
    text = 'id;"Nachname";ort\n0042;"Müller";Köln\n'
    cells = list(table_cells(text))
    assert cells == [Cell("id", 18, "0042"), Cell("Nachname", 24, "Müller"), Cell("ort", 32, "Köln")]
    assert all(text[c.start : c.start + len(c.value)] == c.value for c in cells)


def test_a_row_with_another_cell_count_ends_the_table() -> None:
    text = "member_no,name\n889123,Ana\nthanks for the help\n"
    assert [c.value for c in table_cells(text)] == ["889123", "Ana"]


@pytest.mark.parametrize("header", ["first_name", "firstName", "first-name", "First Name"])
def test_header_words_read_code_keys_as_words(header: str) -> None:
    assert header_words(header).lower() == "first name"


@pytest.mark.parametrize(("locale", "delimiter"), [("en_GB", ","), ("de_DE", ";"), ("fr_FR", "\t"), ("nl_NL", " | ")])
def test_csv_rows_mask_names_ids_and_phones_by_column(locale: str, delimiter: str) -> None:
    fake = Faker(locale)
    fake.seed_instance(7)
    header = delimiter.join(["employee_id", "first_name", "last_name", "email", "mobile"])
    rows, values = [header], []
    for _ in range(3):
        emp = str(fake.random_int(100000, 999999))
        first, last = fake.first_name(), fake.last_name()
        mail, phone = fake.email(), "+44 7700 9" + str(fake.random_int(10000, 99999))
        rows.append(delimiter.join([emp, first, last, mail, phone]))
        values += [emp, first, last, mail, phone]
    text = "Can you dedupe this export?\n" + "\n".join(rows) + "\n"
    hits = found(text)
    missing = [v for v in values if not any(v in h for h in hits)]
    assert missing == []


def test_a_comma_before_a_phone_is_a_field_separator_but_thousands_stay_numbers() -> None:
    assert found("Ana,Lopez,+34 612 34 56 78") >= {"+34 612 34 56 78"}
    assert found("sold 1,234,567 units and 2,500,000 more, 3,000 each") == set()


@pytest.mark.parametrize(
    "text",
    [
        "Each box, each crate, each bag\n2019, 2020, 2021\n",  # header of words, but no cue in it
        "Tom buys apples, pears, and plums.\nHe pays 12345, 200, and 3 cents.\n",
        "x, y, z\n10000, 20000, 30000\n",
        "year,revenue,cost\n2021,15000,12000\n2022,17000,12500\n",
    ],
)
def test_prose_and_number_tables_are_not_personal_data(text: str) -> None:
    assert found(text) == set()


def test_sql_insert_values_are_paired_with_their_columns() -> None:
    text = (
        "INSERT INTO patients (mrn, `full_name`, passport) VALUES ('E3344585', 'John Scott', '910547008'),\n"
        "  ('UR1', 'O''Brien', NULL);"
    )
    assert [(c.header, c.value) for c in table_cells(text)] == [
        ("mrn", "E3344585"), ("full_name", "John Scott"), ("passport", "910547008"),
        ("mrn", "UR1"), ("full_name", "O''Brien"), ("passport", "NULL"),
    ]  # fmt: skip
    assert found(text) >= {"E3344585", "John Scott", "910547008"}


def test_a_cued_column_takes_ids_with_few_digits_but_not_times_or_prices() -> None:
    text = "passport;arrival;fare\nFFGFNFZ89;10:30;12.50\nC01X00T47;09:15;8.75\n"
    assert found(text) == {"FFGFNFZ89", "C01X00T47"}


def test_sql_inserts_of_counts_and_prices_stay() -> None:
    assert found("INSERT INTO orders (qty, price, year) VALUES (12000, 19.99, 2024), (15000, 5.00, 2025);") == set()
