"""Identifiers: national ID validators (valid, near misses, look-alikes), ID numbers by cue in seven languages,
the `unknown_identifier` knob, and an exact pseudonymize → restore round trip on a multilingual prompt."""

from __future__ import annotations

import random
import string
import unicodedata

import pytest

from tandemlm import Runtime, ScriptedModel
from tandemlm.config import parse_config
from tandemlm.errors import ConfigError, ValidationError
from tandemlm.privacy import PatternDetector, PiiGatekeeper
from tandemlm.privacy.identifiers import CF_ODD, VALIDATORS, national_id_kind, verhoeff_valid
from tandemlm.privacy.policy import PrivacyPolicy
from tandemlm.privacy.pseudonymize import Pseudonymizer
from tandemlm.privacy.spans import ENTITIES, span_at
from tandemlm.types import Request

MINE = ["PHONE", "NATIONAL_ID", "ID_NUMBER"]
DETECT = PatternDetector(MINE)  # exact span lists: only the types this module's finders emit
RNG = random.Random(20240501)

#: Published example numbers (documentation and standards examples), per format.
PUBLISHED: dict[str, list[str]] = {
    "ES_DNI": ["12345678Z"],
    "ES_NIE": ["X1234567L", "Y1234567X", "Z1234567R"],
    "FR_NIR": ["184127645108946", "269054958815780"],
    "IT_CODICE_FISCALE": ["RSSMRA85T10A562S", "MRTMTT25D09F205Z"],
    "NL_BSN": ["111222333", "123456782"],
    "UK_NINO": ["AB123456C"],
    "DE_STEUER_ID": ["86095742719", "47036892816", "65929970489", "57549285017", "25768131411"],
    "IN_AADHAAR": ["234123412346", "499118665246"],
    "PT_NIF": ["123456789", "232013969"],
    "BE_NATIONAL_NUMBER": ["85073003328", "93051822361"],
    "BR_CPF": ["52998224725", "11144477735"],
    "AU_TFN": ["123456782", "876543210"],  # the ATO's example and a checksum-valid one
    "IN_PAN": ["AAAPZ1234C", "ABCPE1234F"],
}


# ---- generators: valid values made with each format's own check algorithm ------------------------------


def digits(n: int) -> str:
    return "".join(RNG.choice(string.digits) for _ in range(n))


def dni() -> str:
    n = RNG.randrange(10**8)
    return f"{n:08d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[n % 23]


def nie() -> str:
    prefix, n = RNG.choice("XYZ"), RNG.randrange(10**7)
    return f"{prefix}{n:07d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[int(f"{'XYZ'.index(prefix)}{n:07d}") % 23]


def nir(department: str | None = None) -> str:
    dept = department or f"{RNG.randrange(1, 96):02d}"
    body = f"{RNG.choice('12')}{RNG.randrange(100):02d}{RNG.randrange(1, 13):02d}{dept}{digits(6)}"
    key = 97 - int(body.replace("2A", "19").replace("2B", "18")) % 97
    return f"{body}{key:02d}"


def codice_fiscale() -> str:
    body = (
        "".join(RNG.choice(string.ascii_uppercase) for _ in range(6))
        + digits(2)
        + RNG.choice("ABCDEHLMPRST")
        + f"{RNG.choice([RNG.randrange(1, 32), RNG.randrange(41, 72)]):02d}"
        + RNG.choice(string.ascii_uppercase)
        + digits(3)
    )
    total = sum(CF_ODD[ch] if i % 2 == 0 else (int(ch) if ch.isdigit() else ord(ch) - 65) for i, ch in enumerate(body))
    return body + chr(65 + total % 26)


def bsn() -> str:
    while True:
        body = digits(8)
        check = sum(int(d) * (9 - i) for i, d in enumerate(body)) % 11
        if check < 10:
            return body + str(check)


def nino() -> str:
    while True:
        first, second = RNG.choice("ABCEGHJKLMNOPRSTWXYZ"), RNG.choice("ABCEGHJKLMNPRSTWXYZ")
        if first + second not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            return f"{first}{second}{digits(6)}{RNG.choice('ABCD')}"


def steuer_id() -> str:
    while True:
        pool = RNG.sample(string.digits, 9)  # nine distinct digits, one of them used twice
        body = [*pool, RNG.choice(pool)]
        RNG.shuffle(body)
        ten = "".join(body)
        if ten[0] == "0" or any(ten[i] == ten[i + 1] == ten[i + 2] for i in range(8)):
            continue
        product = 10
        for d in ten:
            product = ((int(d) + product) % 10 or 10) * 2 % 11
        return ten + str((11 - product) % 10)


def aadhaar() -> str:
    body = RNG.choice("23456789") + digits(10)
    (check,) = [d for d in string.digits if verhoeff_valid(body + d)]  # Verhoeff: exactly one digit works
    return body + check


def nif_pt() -> str:
    body = RNG.choice("123") + digits(7)
    r = sum(int(d) * (9 - i) for i, d in enumerate(body)) % 11
    return body + str(0 if r < 2 else 11 - r)


def be_national() -> str:
    born = f"{RNG.randrange(100):02d}{RNG.randrange(1, 13):02d}{RNG.randrange(1, 29):02d}{RNG.randrange(1, 998):03d}"
    return born + f"{97 - int(born) % 97:02d}"


def cpf() -> str:
    d = [int(x) for x in digits(9)]
    for n in (9, 10):
        d.append(sum(x * (n + 1 - i) for i, x in enumerate(d[:n])) * 10 % 11 % 10)
    return "".join(map(str, d))


def tfn() -> str:
    while True:
        body = digits(8)
        total = sum(int(d) * w for d, w in zip(body, (1, 4, 3, 7, 5, 8, 6, 9), strict=True))
        if total % 11 != 10:  # the check digit d must satisfy total + 10d = 0 (mod 11), i.e. d = total mod 11
            return body + str(total % 11)


def pan() -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(RNG.choice(letters) for _ in range(3)) + "P" + RNG.choice(letters) + digits(4) + RNG.choice(letters)


GENERATORS = {
    "ES_DNI": dni, "ES_NIE": nie, "FR_NIR": nir, "IT_CODICE_FISCALE": codice_fiscale, "NL_BSN": bsn,
    "UK_NINO": nino, "DE_STEUER_ID": steuer_id, "IN_AADHAAR": aadhaar, "PT_NIF": nif_pt,
    "BE_NATIONAL_NUMBER": be_national, "BR_CPF": cpf, "AU_TFN": tfn, "IN_PAN": pan,
}  # fmt: skip


def valid_values(kind: str) -> list[str]:
    return PUBLISHED[kind] + [GENERATORS[kind]() for _ in range(25)]


def nationals(text: str) -> list[str]:
    return [s.text for s in PatternDetector().detect(text) if "NATIONAL_ID" in s.entities]


def found(text: str) -> list[tuple[str, str]]:
    return [(s.entity, s.text) for s in DETECT.detect(text)]


# ---- validators -------------------------------------------------------------------------------------


def test_every_format_has_published_examples_and_a_generator() -> None:
    assert set(PUBLISHED) == set(GENERATORS) == set(VALIDATORS)
    assert {"NATIONAL_ID", "ID_NUMBER"} <= set(ENTITIES)


@pytest.mark.parametrize("kind", sorted(VALIDATORS))
def test_published_and_generated_values_validate_and_are_found_without_a_cue(kind: str) -> None:
    for value in valid_values(kind):
        assert VALIDATORS[kind](value), value
        assert national_id_kind(value) is not None
        assert nationals(f"Here it is: {value}.") == [value], value


@pytest.mark.parametrize("kind", sorted(VALIDATORS))
def test_a_wrong_check_character_fails(kind: str) -> None:
    for value in valid_values(kind):
        last = value[-1]
        wrong = str((int(last) + 1) % 10) if last.isdigit() else "A" if last != "A" else "B"
        if kind == "UK_NINO":  # no check letter: a suffix beyond A-D is the near miss
            wrong = "E"
        if kind == "IN_PAN":  # no check letter either: a digit where the letter goes is the near miss
            wrong = "7"
        assert not VALIDATORS[kind](value[:-1] + wrong), value
        if kind not in ("NL_BSN", "PT_NIF", "AU_TFN"):  # nine bare digits may pass another 9-digit format
            assert not nationals(f"Here it is: {value[:-1] + wrong}."), value


@pytest.mark.parametrize("kind", ["ES_DNI", "ES_NIE", "FR_NIR", "IT_CODICE_FISCALE", "NL_BSN", "DE_STEUER_ID",
                                  "IN_AADHAAR", "BE_NATIONAL_NUMBER"])  # fmt: skip
def test_one_digit_off_in_the_body_fails(kind: str) -> None:
    # these checks catch every single-digit error (PT NIF and CPF fold two remainders into check digit 0)
    for value in valid_values(kind):
        i = next(i for i in range(len(value) - 2, -1, -1) if value[i].isdigit())
        for delta in range(1, 10):
            changed = value[:i] + str((int(value[i]) + delta) % 10) + value[i + 1 :]
            assert not VALIDATORS[kind](changed), (value, changed)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("DNI 12.345.678-Z en vigor", "12.345.678-Z"),
        ("mi NIE es X-1234567-L.", "X-1234567-L"),
        ("sécu 1 84 12 76 451 089 46 ok", "1 84 12 76 451 089 46"),
        ("nato a Roma, RSSMRA85T10A562S, residente", "RSSMRA85T10A562S"),
        ("omocodia: RSSMRA85T10A56NH ok", "RSSMRA85T10A56NH"),
        ("NI number AB 12 34 56 C please", "AB 12 34 56 C"),
        ("BSN 1112.22.333 staat erop", "1112.22.333"),
        ("IdNr. 86 095 742 719 steht oben", "86 095 742 719"),
        ("Aadhaar 2341 2341 2346 linked", "2341 2341 2346"),
        ("NIF 123 456 789 do contribuinte", "123 456 789"),
        ("rijksregisternummer 85.07.30-033.28", "85.07.30-033.28"),
        ("CPF 529.982.247-25 cadastrado", "529.982.247-25"),
    ],
)
def test_written_forms_are_found_whole(text: str, value: str) -> None:
    assert nationals(text) == [value]


def test_corsica_departments_2a_and_2b() -> None:
    for dept in ("2A", "2B"):
        value = nir(dept)
        assert VALIDATORS["FR_NIR"](value) and nationals(f"NIR {value} ok") == [value]
        assert not VALIDATORS["FR_NIR"](value.replace(dept, "20"))


@pytest.mark.parametrize(
    "text",
    [
        "the code 12345678A is printed",  # a DNI with the wrong letter, no cue
        "reference 123456780 of the shipment",  # fails the 11-test and the NIF check
        "codes GB123456A, QQ123456C, AB123456E and DF123456A",  # NINO excluded prefixes, letters, suffix
        "the word ABCDEFGHIJKLMNOP is sixteen letters",  # shaped nothing like a codice fiscale
        "RSSMRA85T10A562T is one letter off",  # codice fiscale with the wrong check letter
        "NIR 184137645108946 has month 13",
        "aadhaar-like 134123412346 starts with 1",
        "numbers 00000000000 and 11111111111",
        "the product number 1234567890123456 again",
    ],
)
def test_look_alikes_are_not_national_ids(text: str) -> None:
    assert nationals(text) == []


def test_weak_checksums_in_a_quantity_are_amounts() -> None:
    value_bsn, value_aadhaar, value_steuer = PUBLISHED["NL_BSN"][1], PUBLISHED["IN_AADHAAR"][0], steuer_id()
    for text in (f"It cost ${value_bsn}.", f"{value_aadhaar} dollars were raised", f"{value_steuer} * 3 = ?",
                 f"a budget of €{value_steuer}", f"{value_bsn} km away", f"{value_bsn}% growth"):  # fmt: skip
        assert nationals(text) == [], text
    assert nationals(f"my number {value_bsn} please") == [value_bsn]  # the same digits outside a quantity


# ---- identifiers by cue -----------------------------------------------------------------------------

CUED = [
    # English
    ("en", "Patient MRN 00451234 was admitted.", "00451234"),
    ("en", "My passport number is 533380006.", "533380006"),
    ("en", "Account no. 31926819, sort code 60-16-13.", "31926819"),
    ("en", "Employee ID: EMP-20931 starts Monday", "EMP-20931"),
    ("en", "Policy number PX-7781-22 covers it.", "PX-7781-22"),
    ("en", "Claim #CL2023-88812 is open.", "CL2023-88812"),
    ("en", "driver's license D1234-56789-01234", "D1234-56789-01234"),
    ("en", "Case no. 2:19-cv-01234 was filed", "2:19-cv-01234"),
    # Spanish
    ("es", "Número de historia clínica: 4471920", "4471920"),
    ("es", "Mi pasaporte es PAA123456.", "PAA123456"),
    ("es", "número de socio 88213", "88213"),
    ("es", "Póliza nº 55-2031-77", "55-2031-77"),
    ("es", "Expediente 2023/004512 abierto", "2023/004512"),
    ("es", "número de cuenta 0049 1500 0512 3456", "0049 1500 0512 3456"),
    # French
    ("fr", "Numéro de dossier : 77A-3319", "77A-3319"),
    ("fr", "Passeport n° 19FR45678", "19FR45678"),
    ("fr", "numéro client 4021987", "4021987"),
    ("fr", "compte n° 30004 00550 00012345678", "30004 00550 00012345678"),
    ("fr", "Permis de conduire : 123456789012", "123456789012"),
    # German
    ("de", "Patientennummer: 0047112", "0047112"),
    ("de", "Reisepass C01X00T47", "C01X00T47"),
    ("de", "Kunden-Nr.: 889912", "889912"),
    ("de", "Konto-Nr. 1234567890", "1234567890"),
    ("de", "Aktenzeichen 3 O 123/22", "3 O 123/22"),
    ("de", "Führerschein B072RRE2I55", "B072RRE2I55"),
    ("de", "Sozialversicherungsnummer 65 170839 J 003", "65 170839 J 003"),
    # Italian
    ("it", "cartella clinica n. 2023-44817", "2023-44817"),
    ("it", "passaporto YA1234567", "YA1234567"),
    ("it", "matricola 0012345", "0012345"),
    ("it", "conto corrente n. 000012345678", "000012345678"),
    ("it", "patente U1H12345X", "U1H12345X"),
    ("it", "polizza n. 71-220-118", "71-220-118"),
    # Dutch
    ("nl", "personeelsnummer 102938", "102938"),
    ("nl", "paspoortnummer NW92K14L3", "NW92K14L3"),
    ("nl", "klantnummer: 55512-A", "55512-A"),
    ("nl", "polisnummer 9912-3381", "9912-3381"),
    ("nl", "rijbewijs 5123456789", "5123456789"),
    ("nl", "zaaknummer Z-2024-0091", "Z-2024-0091"),
    # Portuguese
    ("pt", "passaporte CA123456", "CA123456"),
    ("pt", "conta nº 0003-12345678-9", "0003-12345678-9"),
    ("pt", "matrícula 2021-0457", "2021-0457"),
    ("pt", "apólice 88.123.001", "88.123.001"),
    ("pt", "processo nº 0012345-67.2023.8.26.0100", "0012345-67.2023.8.26.0100"),
    ("pt", "número de utente 987654321", "987654321"),
    # dot leaders in printed forms, abbreviations, key=value log fields, a past tense between cue and value
    ("en", "Membership no. ....... 4471-220", "4471-220"),
    ("en", "Employee ID … 00913", "00913"),
    ("de", "Pers.-Nr.: 55012", "55012"),
    ("en", "ts=1717000000 emp=204417 action=login", "204417"),
    ("de", "die Mitgliedsnummer war 7781234", "7781234"),
    ("es", "mi número de socio era 88-1042", "88-1042"),
]


@pytest.mark.parametrize(("lang", "text", "value"), CUED)
def test_cued_identifiers_in_seven_languages(lang: str, text: str, value: str) -> None:
    assert ("ID_NUMBER", value) in found(text), (lang, found(text))


def test_all_seven_languages_are_covered() -> None:
    assert {lang for lang, _, _ in CUED} == {"en", "es", "fr", "de", "it", "nl", "pt"}


def test_a_cued_value_that_validates_is_a_national_id() -> None:
    assert found("Su NIE es X1234567L") == [("NATIONAL_ID", "X1234567L")]
    assert found("numéro de sécurité sociale 2 69 05 49 588 157 80") == [("NATIONAL_ID", "2 69 05 49 588 157 80")]
    assert found("codice fiscale: RSSMRA85T10A562S") == [("NATIONAL_ID", "RSSMRA85T10A562S")]


def test_a_known_format_that_fails_its_check_is_still_masked_after_its_cue() -> None:
    assert found("DNI 12345678A") == [("ID_NUMBER", "12345678A")]  # wrong letter: not a DNI, still an ID
    assert found("BSN 123456780") == [("ID_NUMBER", "123456780")]  # fails the 11-test
    assert found("12345678A") == []  # and without the cue, nothing


@pytest.mark.parametrize(
    "text",
    [
        "Her passport was issued in 2019 and expires in 2029.",  # a year is not a passport
        "passport issued in 2019",
        "Order 12345 units by Friday.",  # no cue
        "order number 12345-AB shipped today",  # order numbers identify a purchase, not a person
        "invoice no. 88213 is paid",
        "a record 15000 visitors came",  # an everyday cue word without a connector, and a count
        "In that case 150000 fans would attend.",
        "The account has 250000 dollars and the policy pays 1000000 dollars.",
        "A student scored 98765 points.",
        "The claim rose 12.50 percent over 2019-2020.",
        "Patient record updated at 10:30:45 today.",
        "The member paid $12345.",
        "Case 1: x = 12345.",
        "Student 1 got 95, student 2 got 87, account 3 got 12.",
        "case study 2023-2024 results",
        "license version 2.14.3 applies",
        "The ZIP code 90210 is in Beverly Hills.",
        "She renewed the policy. 15000 dollars were paid out.",  # one dot ends a sentence; dot leaders are 2+
        "Emp was 12345 volts in the test.",
    ],
)
def test_near_misses_are_not_identifiers(text: str) -> None:
    assert [e for e, _ in found(text) if e in ("ID_NUMBER", "NATIONAL_ID")] == [], found(text)


def test_an_everyday_cue_needs_a_connector_or_an_id_shape() -> None:
    assert found("record 150000") == []
    assert found("record no. 150000") == [("ID_NUMBER", "150000")]
    assert found("record: 150000") == [("ID_NUMBER", "150000")]
    assert found("record 0150000") == [("ID_NUMBER", "0150000")]  # a leading zero
    assert found("record RX-15000") == [("ID_NUMBER", "RX-15000")]
    assert found("case number 12345-AB") == [("ID_NUMBER", "12345-AB")]  # case numbers identify a person


def test_cues_match_whatever_the_case_and_accents() -> None:
    for text in ("NÚMERO DE HISTORIA CLÍNICA: 4471920", "numero de historia clinica 4471920",
                 unicodedata.normalize("NFD", "Número de historia clínica: 4471920"),
                 "FÜHRERSCHEIN 4471920", "fuhrerschein 4471920"):  # fmt: skip
        assert [s.text for s in DETECT.detect(text) if s.entity == "ID_NUMBER"] == ["4471920"], text


# ---- policy -----------------------------------------------------------------------------------------

TEXT = "Kundennummer 4711-0815, DNI 12345678Z"
ID_SPAN, NATIONAL = span_at(TEXT, 13, 22, "ID_NUMBER"), span_at(TEXT, 28, 37, "NATIONAL_ID")


def test_unknown_identifier_knob() -> None:
    assert PrivacyPolicy().action("ID_NUMBER") == "pseudonymize"
    assert PrivacyPolicy(default="allow").action("ID_NUMBER") == "pseudonymize"  # masked unless said otherwise
    assert PrivacyPolicy(default="allow").action("NATIONAL_ID") == "allow"
    assert PrivacyPolicy(default="route_local").action("ID_NUMBER") == "route_local"  # a stricter default holds
    assert PrivacyPolicy(unknown_identifier="allow").decide([ID_SPAN, NATIONAL]).mask == (NATIONAL,)
    assert PrivacyPolicy(unknown_identifier="block").decide([ID_SPAN]).route == "block"
    local = PrivacyPolicy(unknown_identifier="route_local")
    assert local.needs_edge and local.decide([ID_SPAN]).route == "local"
    assert PrivacyPolicy(unknown_identifier="block", entities={"ID_NUMBER": "allow"}).action("ID_NUMBER") == "allow"
    with pytest.raises(ValidationError, match="unknown_identifier"):
        PrivacyPolicy(unknown_identifier="shred")  # type: ignore[arg-type]


MODELS = """
models:
  small: {engine: scripted, replies: "edge", location: edge}
  big: {engine: scripted, replies: "ok", location: cloud}
"""


def test_the_knob_in_a_pipeline_file() -> None:
    pipeline = "pipelines:\n  p: {model: big, privacy: {detectors: [regex], unknown_identifier: allow}}"
    cfg = parse_config(MODELS + pipeline)
    privacy = cfg.pipelines["p"].privacy
    assert privacy is not None and privacy.unknown_identifier == "allow"
    with pytest.raises(ConfigError, match="privacy.edge must name the edge model"):
        parse_config(MODELS + "pipelines:\n  p: {model: big, privacy: {unknown_identifier: route_local}}")
    with pytest.raises(ConfigError, match="unknown_identifier"):
        parse_config(MODELS + "pipelines:\n  p: {model: big, privacy: {unknown_identifier: shred}}")
    big = ScriptedModel(lambda r: r.messages[-1].content, name="big", location="cloud")
    model = Runtime(cfg, models={"big": big}).pipeline("p")
    assert isinstance(model, PiiGatekeeper) and model.policy.action("ID_NUMBER") == "allow"
    model.generate("Kundennummer 4711-0815 and ann@example.com")
    assert big.requests[0].messages[0].content == "Kundennummer 4711-0815 and <EMAIL_1>"


# ---- round trip -------------------------------------------------------------------------------------

MULTILINGUAL = (
    "Hola, soy Ana. Mi DNI es 12.345.678-Z y mi pasaporte PAA123456; llámame al 612 34 56 78.\n"
    "Bonjour, numéro de sécurité sociale 1 84 12 76 451 089 46, dossier n° 77A-3319, tél. 06 12 34 56 78.\n"
    "Hallo, Kunden-Nr.: 889912, Steuer-ID 86 095 742 719, Handy 0151 23456789.\n"
    "Ciao, codice fiscale RSSMRA85T10A562S, cartella clinica n. 2023-44817, cell. 333 123 4567.\n"
    "Hoi, BSN 111222333, polisnummer 9912-3381, bel 06 87654321.\n"
    "Olá, NIF 232013969, apólice 88.123.001, CPF 529.982.247-25, telemóvel +351 912 345 678.\n"
    "Hi, NINO AB 12 34 56 C, Aadhaar 2341 2341 2346, MRN 00451234, call 07700 900123. "
    "She sold 48 clips in April for 1,200 dollars in 2023 at 10:30; pi is 3.14159."
)
SECRETS = ["12.345.678-Z", "PAA123456", "612 34 56 78", "1 84 12 76 451 089 46", "77A-3319", "06 12 34 56 78",
           "889912", "86 095 742 719", "0151 23456789", "RSSMRA85T10A562S", "2023-44817", "333 123 4567",
           "111222333", "9912-3381", "06 87654321", "232013969", "88.123.001", "529.982.247-25", "+351 912 345 678",
           "AB 12 34 56 C", "2341 2341 2346", "00451234", "07700 900123"]  # fmt: skip


def test_multilingual_round_trip_masks_every_identifier_and_restores_exactly() -> None:
    assert sorted(s.text for s in DETECT.detect(MULTILINGUAL)) == sorted(SECRETS)
    spans = PatternDetector().detect(MULTILINGUAL)  # every pattern finder, whatever else it masks
    p = Pseudonymizer()
    masked = p.mask(MULTILINGUAL, spans)
    assert not [v for v in SECRETS if v in masked]
    assert "48 clips" in masked and "1,200 dollars in 2023 at 10:30" in masked and "3.14159" in masked
    assert p.restore(masked) == MULTILINGUAL
    restorer = p.restorer()  # and from a stream cut every 7 characters
    pieces = [restorer.feed(masked[i : i + 7]) for i in range(0, len(masked), 7)] + [restorer.flush()]
    assert "".join(pieces) == MULTILINGUAL


def test_multilingual_round_trip_through_the_gatekeeper() -> None:
    cloud = ScriptedModel(lambda r: "You wrote: " + r.messages[-1].content, name="cloud", location="cloud")
    answer = PiiGatekeeper(cloud, detectors=PatternDetector()).generate(Request.of(MULTILINGUAL, max_tokens=4096))
    sent = cloud.requests[0].messages[-1].content
    assert not [v for v in SECRETS if v in sent] and "<NATIONAL_ID_1>" in sent and "<ID_NUMBER_1>" in sent
    assert answer.text == "You wrote: " + MULTILINGUAL
