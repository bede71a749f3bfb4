"""The multinational PII generator (bench/pii_world.py) and the privacy benchmark's `world` scoring.

The checksum checks here are written apart from the generator's code and are themselves checked against
published examples and Faker's own generators, so a shared mistake cannot pass unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tandemlm.bench import pii_world
from tandemlm.bench.pii_world import Gold, WorldSample, is_held_out, world_samples
from tandemlm.bench.privacy_world import score_pii_free, score_world, world_leakage, world_markdown, world_targets
from tandemlm.privacy import Detector
from tandemlm.privacy.spans import Span, span_at

pytest.importorskip("faker")


@pytest.fixture(scope="module")
def samples() -> list[WorldSample]:
    return world_samples(120, seed=3)


# ---- independent validators ---------------------------------------------------------------------------


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def ssn_ok(v: str) -> bool:
    m = re.fullmatch(r"(\d{3})[- ]?(\d{2})[- ]?(\d{4})", v)
    return bool(m) and m[1] not in ("000", "666") and m[1][0] != "9" and m[2] != "00" and m[3] != "0000"


def nino_ok(v: str) -> bool:
    c = v.replace(" ", "")
    return (re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", c) is not None
            and c[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})  # fmt: skip


def tfn_ok(v: str) -> bool:
    d = digits(v)
    return len(d) == 9 and sum(int(x) * w for x, w in zip(d, (1, 4, 3, 7, 5, 8, 6, 9, 10), strict=True)) % 11 == 0


def verhoeff_ok(v: str) -> bool:
    # the dihedral group D5: rotations 0-4, reflections 5-9; permutation i is the i-th power of the first
    mul = [[(i + j) % 5 + 5 * (j >= 5) if i < 5 else (i - j) % 5 + 5 * (j < 5) for j in range(10)] for i in range(10)]
    perm = [list(range(10)), [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]]
    for _ in range(6):
        perm.append([perm[1][x] for x in perm[-1]])
    c = 0
    for i, ch in enumerate(reversed(digits(v))):
        c = mul[c][perm[i % 8][int(ch)]]
    return c == 0


def aadhaar_ok(v: str) -> bool:
    d = digits(v)
    return len(d) == 12 and d[0] not in "01" and verhoeff_ok(d)


def dni_ok(v: str) -> bool:
    c = v.replace(".", "").replace("-", "").replace(" ", "").upper()
    if c[0] in "XYZ":
        c = str("XYZ".index(c[0])) + c[1:]
    return re.fullmatch(r"\d{8}[A-Z]", c) is not None and "TRWAGMYFPDXBNJZSQVHLCKE"[int(c[:8]) % 23] == c[8]


def nir_ok(v: str) -> bool:
    c = v.replace(" ", "")
    if not re.fullmatch(r"[12]\d{4}(\d{2}|2A|2B)\d{8}", c):
        return False
    body = c[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(c[13:])


def steuer_id_ok(v: str) -> bool:
    d = digits(v)
    if len(d) != 11 or d[0] == "0":
        return False
    counts = sorted((d[:10].count(x) for x in set(d[:10])), reverse=True)
    if counts[0] not in (2, 3) or (counts[1:] and counts[1] != 1):
        return False
    product = 10
    for x in d[:10]:
        total = (int(x) + product) % 10
        product = (2 * (total if total else 10)) % 11
    return (11 - product) % 10 == int(d[10])


def codice_fiscale_ok(v: str) -> bool:
    if not re.fullmatch(r"[A-Z]{6}\d{2}[ABCDEHLMPRST]\d{2}[A-Z]\d{3}[A-Z]", v):
        return False
    odd = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
    value = lambda ch, pos: (odd[int(ch) if ch.isdigit() else ord(ch) - 65] if pos % 2 == 0  # noqa: E731
                             else int(ch) if ch.isdigit() else ord(ch) - 65)  # fmt: skip
    return chr(65 + sum(value(ch, i) for i, ch in enumerate(v[:15])) % 26) == v[15]


def eleven_proof(d: str, last: int) -> bool:
    """BSN (last weight -1) and the old Dutch bank account (last weight 1)."""
    total = sum(int(x) * w for x, w in zip(d, range(9, 1, -1), strict=False)) + last * int(d[8])
    return len(d) == 9 and total % 11 == 0


def nif_ok(v: str) -> bool:
    d = digits(v)
    r = sum(int(x) * w for x, w in zip(d[:8], range(9, 1, -1), strict=True)) % 11
    return len(d) == 9 and int(d[8]) == (0 if r < 2 else 11 - r)


def nhs_ok(v: str) -> bool:
    d = digits(v)
    check = 11 - sum(int(x) * w for x, w in zip(d[:9], range(10, 1, -1), strict=True)) % 11
    return len(d) == 10 and check != 10 and check % 11 == int(d[9])


def medicare_ok(v: str) -> bool:
    d = digits(v)
    weights = (1, 3, 7, 9, 1, 3, 7, 9)
    return (
        len(d) == 10 and d[0] in "23456" and sum(int(x) * w for x, w in zip(d, weights, strict=False)) % 10 == int(d[8])
    )


def kvnr_ok(v: str) -> bool:
    if not re.fullmatch(r"[A-Z]\d{9}", v):
        return False
    total = 0
    for i, x in enumerate(f"{ord(v[0]) - 64:02d}{v[1:9]}"):
        p = int(x) * (2 if i % 2 else 1)
        total += sum(map(int, str(p)))
    return total % 10 == int(v[9])


def aba_ok(v: str) -> bool:
    d = [int(x) for x in v]
    return len(d) == 9 and (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8]) % 10 == 0


def ccc_ok(v: str) -> bool:
    d = digits(v)
    weights = (1, 2, 4, 8, 5, 10, 9, 7, 3, 6)

    def dc(part: str) -> int:
        r = 11 - sum(int(x) * w for x, w in zip(part, weights, strict=True)) % 11
        return 0 if r == 11 else 1 if r == 10 else r

    return len(d) == 20 and f"{dc('00' + d[:8])}{dc(d[10:])}" == d[8:10]


def rib_ok(v: str) -> bool:
    d = digits(v)
    return len(d) == 23 and (89 * int(d[:5]) + 15 * int(d[5:10]) + 3 * int(d[10:21]) + int(d[21:])) % 97 == 0


def nib_ok(v: str) -> bool:
    d = digits(v)
    return len(d) == 21 and int(d) % 97 == 1


CHECKS: dict[str, Callable[[str], bool]] = {
    "us_ssn": ssn_ok, "uk_nino": nino_ok, "au_tfn": tfn_ok, "in_aadhaar": aadhaar_ok,
    "in_pan": lambda v: re.fullmatch(r"[A-Z]{3}[PCHFATBLJG][A-Z]\d{4}[A-Z]", v) is not None,
    "es_dni": dni_ok, "es_nie": dni_ok, "fr_nir": nir_ok, "de_steuer_id": steuer_id_ok,
    "it_codice_fiscale": codice_fiscale_ok, "nl_bsn": lambda v: eleven_proof(digits(v), -1), "pt_nif": nif_ok,
    "uk_nhs": nhs_ok, "au_medicare": medicare_ok, "de_kvnr": kvnr_ok,
    "es_account": ccc_ok, "fr_account": rib_ok, "pt_account": nib_ok,
    "nl_account": lambda v: eleven_proof(digits(v), 1),
}  # fmt: skip


def test_the_validators_accept_published_examples_and_reject_a_changed_digit() -> None:
    examples = {"uk_nino": "AB 12 34 56 C", "au_tfn": "123 456 782", "in_aadhaar": "2345 6789 0124",
                "es_dni": "12345678Z", "es_nie": "X1234567L", "fr_nir": "1 84 12 76 451 089 46",
                "de_steuer_id": "86095742719", "it_codice_fiscale": "RSSMRA80A01H501U", "nl_bsn": "111222333",
                "pt_nif": "123456789", "uk_nhs": "943 476 5919", "au_medicare": "2123 45670 1",
                "de_kvnr": "A123456780", "es_account": "2100 0418 45 0200051332",
                "fr_account": "30006 00001 12345678901 89", "pt_account": "0002 0123 12345678901 54",
                "nl_account": "12.34.56.789"}  # fmt: skip
    for detail, value in examples.items():
        assert CHECKS[detail](value), (detail, value)
        if detail == "uk_nino":  # format rules, no check digit
            assert not nino_ok("QQ 12 34 56 E") and not nino_ok("GB 12 34 56 A") and not nino_ok("DA 12 34 56 A")
            continue
        i = min(i for i, c in enumerate(value) if c.isdigit())
        changed = value[:i] + str((int(value[i]) + 1) % 10) + value[i + 1 :]
        assert not CHECKS[detail](changed), (detail, changed)
    assert aba_ok("011000015") and not aba_ok("011000016")
    assert verhoeff_ok("2363") and verhoeff_ok("123451") and not verhoeff_ok("2364")  # Verhoeff's own examples


def test_the_validators_agree_with_fakers_own_generators() -> None:
    """Where Faker's are right: its Aadhaar uses Luhn (not Verhoeff), its pt_PT vat_id random digits, its en_GB ssn
    the never-issued ZZ prefix, so the generator makes its own."""
    from faker import Faker

    makers = {"es_dni": ("es_ES", "nif"), "es_nie": ("es_ES", "nie"), "it_codice_fiscale": ("it_IT", "ssn"),
              "nl_bsn": ("nl_NL", "ssn"), "fr_nir": ("fr_FR", "ssn"), "in_pan": ("en_IN", "pan")}  # fmt: skip
    for detail, (locale, method) in makers.items():
        fake = Faker(locale)
        fake.seed_instance(7)
        for _ in range(30):
            value = getattr(fake, method)()
            assert CHECKS[detail](value), (detail, value)
    fake = Faker("en_US")
    fake.seed_instance(7)
    assert all(aba_ok(fake.aba()) for _ in range(30))


# ---- the generator ------------------------------------------------------------------------------------


def test_the_generator_is_deterministic_for_a_seed() -> None:
    a, b = world_samples(6, seed=11), world_samples(6, seed=11)
    assert a == b and len(a) == 6 * len(pii_world.LOCALES)
    assert [s.text for s in world_samples(6, seed=12)] != [s.text for s in a]


def test_every_gold_span_is_exactly_the_inserted_value(samples: list[WorldSample]) -> None:
    for s in samples:
        ends = 0
        for g in sorted(s.gold, key=lambda g: g.start):
            assert s.text[g.start : g.end] == g.text and g.text == g.text.strip() and g.text, (s.template, g)
            assert g.start >= ends, f"overlapping gold spans in {s.template}"
            ends = g.end
            assert g.entity in pii_world.KINDS[g.kind]
        assert not re.search(r"\{\{\w+(\|\w+)?\}\}", s.text), s.template
        for a, b in s.ignore:
            assert not any(g.start < b and a < g.end for g in s.gold)


def test_every_kind_occurs_in_every_locale_in_both_shares(samples: list[WorldSample]) -> None:
    seen = {(g.kind, s.locale, s.held_out) for s in samples for g in s.gold}
    for kind in pii_world.KINDS:
        for locale in pii_world.LOCALES:
            if kind == "phone_fictional" and locale not in ("en_US", "en_GB", "en_AU", "fr_FR"):
                continue
            assert (kind, locale, False) in seen and (kind, locale, True) in seen, (kind, locale)


def test_generated_national_ids_medical_numbers_and_accounts_pass_their_checksums(
    samples: list[WorldSample],
) -> None:
    checked: dict[str, int] = {}
    for s in samples:
        for g in s.gold:
            if g.detail in CHECKS:
                assert CHECKS[g.detail](g.text), (g.detail, g.text, s.template)
                checked[g.detail] = checked.get(g.detail, 0) + 1
        if s.locale == "en_US" and any(g.kind == "bank_account" for g in s.gold):
            for a, b in s.ignore:
                if re.fullmatch(r"\d{9}", s.text[a:b]):
                    assert aba_ok(s.text[a:b])
                    checked["us_routing"] = checked.get("us_routing", 0) + 1
    assert set(CHECKS) <= set(checked), sorted(set(CHECKS) - set(checked))
    assert checked["us_routing"] > 0


def test_phone_numbers_are_valid_or_in_a_range_reserved_for_fiction(samples: list[WorldSample]) -> None:
    import phonenumbers

    fr = r"(99.00|61.91|53.01|65.71|36.49|39.98)"
    fiction = re.compile(rf"555.01\d\d|7700 900|7946 0|496 0|491 57\d|\b5550\b|\b7010\b|0[1-6].{fr}|\+33 [1-6] {fr}")
    for s in samples:
        region = pii_world.REGIONS[s.locale]
        for g in s.gold:
            if g.kind == "phone":
                assert phonenumbers.is_valid_number(phonenumbers.parse(g.text, region)), (g.text, region)
            elif g.kind == "phone_fictional":
                assert fiction.search(g.text), g.text


def test_secrets_are_escaped_as_their_format_needs(samples: list[WorldSample]) -> None:
    import json

    import yaml

    quoted = 0
    for s in samples:
        if s.style == "json":
            json.loads(s.text)
        if s.style == "yaml":
            yaml.safe_load(s.text)
        for g in s.gold:
            if g.detail == "password_json" and '\\"' in g.text:
                quoted += 1
    assert quoted > 0  # some JSON passwords hold escaped quotes


def test_the_held_out_split_is_fixed_by_the_template_id_and_covers_every_style() -> None:
    from tandemlm.bench.pii_world_templates import STYLES, TEMPLATES, Template

    assert [is_held_out(f"probe.{i}") for i in range(8)] == [is_held_out(f"probe.{i}") for i in range(8)]
    assert Template("probe.1", "chat", ("en",), "a").held_out == Template("probe.1", "code", ("*",), "b").held_out
    probes = [is_held_out(f"probe.{i}") for i in range(10)]  # pins the hash and the salt
    assert probes == [False, False, True, True, True, True, False, False, False, False]
    for style in STYLES:
        shares = {t.held_out for t in TEMPLATES if t.style == style}
        assert shares == {True, False}, style
    share = sum(t.held_out for t in TEMPLATES) / len(TEMPLATES)
    assert 0.25 <= share <= 0.4
    assert len({t.id for t in TEMPLATES}) == len(TEMPLATES)


def test_fresh_templates_fill_every_slot_and_hold_every_kind_in_every_locale() -> None:
    import json

    import yaml

    from tandemlm.bench.pii_world_fresh import FRESH_TEMPLATES

    assert len(FRESH_TEMPLATES) >= 60 and len({t.id for t in FRESH_TEMPLATES}) == len(FRESH_TEMPLATES)
    assert {t.style for t in FRESH_TEMPLATES} == set(pii_world.STYLES)
    assert {t.langs[0] for t in FRESH_TEMPLATES} == {"en", "es", "fr", "de", "it", "nl", "pt", "*"}
    fresh = world_samples(60, seed=3, fresh=True)
    assert {s.template for s in fresh} == {t.id for t in FRESH_TEMPLATES}  # every template drawn
    seen = {(g.kind, s.locale) for s in fresh for g in s.gold}
    for kind in pii_world.KINDS:
        for locale in pii_world.LOCALES:
            if kind != "phone_fictional" or locale in ("en_US", "en_GB", "en_AU", "fr_FR"):
                assert (kind, locale) in seen, (kind, locale)
    for s in fresh:
        assert not re.search(r"\{\{\w+(\|\w+)?\}\}", s.text), s.template  # every slot filled
        assert s.gold and all(s.text[g.start : g.end] == g.text and g.text.strip() == g.text for g in s.gold)
        if s.style == "json":
            json.loads(s.text)
        if s.style == "yaml":
            yaml.safe_load(s.text)


def test_fresh_templates_never_enter_dev_and_are_scored_apart() -> None:
    from tandemlm.bench.pii_world_fresh import FRESH_TEMPLATES
    from tandemlm.bench.pii_world_templates import TEMPLATES

    assert all(t.fresh and t.held_out and t.split == "fresh" for t in FRESH_TEMPLATES)
    assert not {t.id for t in FRESH_TEMPLATES} & {t.id for t in TEMPLATES}
    assert not {t.text for t in FRESH_TEMPLATES} & {t.text for t in TEMPLATES}
    assert {t.split for t in TEMPLATES} == {"dev", "held_out"}
    # the dev/held-out draw is what it was before the fresh templates came
    assert not any(s.fresh or s.template.startswith("fresh.") for s in world_samples(60, seed=3))
    fresh = world_samples(2, seed=3, fresh=True)
    assert all(s.split == "fresh" and s.held_out for s in fresh)  # code keeping to `not held_out` never fits on them
    scores = score_world(fresh, [[] for _ in fresh])
    assert scores["recall"]["dev"] == {} and scores["recall"]["held_out"] == {} and scores["recall"]["fresh"]
    assert all(r["all"]["recall"] == 0.0 for r in scores["recall"]["fresh"].values())


def test_world_targets_are_judged_on_held_out_and_fresh_and_the_report_shows_fresh() -> None:
    a, b, c = "Jo Bloggs", "Ann Lee", "Kim Park"
    shares = [(a, False, False), (b, True, False), (c, True, True)]  # dev, held-out, fresh
    samples = [WorldSample(t, (_gold(t, t, "person"),), (), "en_GB", f"t.{i}", "chat", held, fresh)
               for i, (t, held, fresh) in enumerate(shares)]  # fmt: skip
    for found, verdict in (({a, b, c}, True), ({a, b}, False), ({a, c}, False)):
        predicted = [[span_at(s.text, 0, len(s.text), "PERSON")] if s.text in found else [] for s in samples]
        result = {"detection": score_world(samples, predicted), "pii_free": {"per_100": 0.0},
                  "latency": {"added_p50_ms": 1.0}}  # fmt: skip
        person = next(t for t in world_targets(result, with_slm=False) if t["target"].startswith("person"))
        assert person["pass"] is verdict and person["fresh"] == (1.0 if c in found else 0.0), found
    assert person["dev"] == 1.0 and person["held_out"] == 0.0
    smp = {"total": 3, "held_out": 2, "fresh": 1, "templates": 2, "held_out_templates": 1, "fresh_templates": 1,
           "by_style": {"dev": {"chat": 1}, "held_out": {"chat": 1}, "fresh": {"chat": 1}},
           "values": {split: {"person": {loc: int(loc == "en_GB") for loc in pii_world.LOCALES}}
                      for split in ("dev", "held_out", "fresh")}}  # fmt: skip
    free = {"prompts": 1, "per_100": 0.0, "spans": 0, "prompts_flagged": 0, "by_dataset": {}, "by_type": {},
            "top": []}  # fmt: skip
    world = {**result, "samples": smp, "targets": world_targets(result, False), "pii_free": free,
             "leakage": {"kind": {}, "locale": {}},
             "latency": {"prompts": 1, "repeats": 1, "added_p50_ms": 1.0, "added_p95_ms": 1.0, "detect_p50_ms": 1.0,
                         "detect_p95_ms": 1.0}}  # fmt: skip
    text = "\n".join(world_markdown(world, {"world_detectors": "x", "faker": "0", "world_samples": 1, "seed": 0}))
    assert "| target | dev | held-out | fresh | verdict |" in text
    assert "| person recall >= 0.95 | 1 | 0 | 1 | **FAIL** |" in text
    assert "### Recall (covered, any type), fresh templates" in text and "fresh n | fresh recall" in text
    assert "fresh spans | fresh false | fresh precision" in text


# ---- scoring ------------------------------------------------------------------------------------------


def _gold(text: str, value: str, kind: str, detail: str = "") -> Gold:
    start = text.index(value)
    return Gold(start, start + len(value), pii_world.KINDS[kind][0], value, kind, detail or kind)


def test_the_world_scorer_on_a_hand_made_example() -> None:
    a = "Ana Ruiz, DNI 12345678Z, tel 612 34 56 78, user bob"
    b = 'pw: "s3cr&t" for Jo'
    samples = [
        WorldSample(a, (_gold(a, "Ana Ruiz", "person"), _gold(a, "12345678Z", "national_id", "es_dni"),
                        _gold(a, "612 34 56 78", "phone", "es")), ((48, 51),), "es_ES", "t.1", "chat", False),
        WorldSample(b, (_gold(b, "s3cr&t", "secret", "password_yaml"), _gold(b, "Jo", "person")), (), "en_GB", "t.2",
                    "yaml", True),
    ]  # fmt: skip
    predicted = [
        [span_at(a, 0, 3, "PERSON"), span_at(a, 4, 8, "LOCATION"), span_at(a, 14, 23, "ID_NUMBER"),
         span_at(a, 29, 35, "PHONE"), span_at(a, 10, 13, "ORGANIZATION"), span_at(a, 48, 51, "PERSON")],
        [span_at(b, 5, 11, "SECRET"), span_at(b, 0, 2, "PERSON")],
    ]  # fmt: skip
    scores = score_world(samples, predicted)
    dev, held = scores["recall"]["dev"], scores["recall"]["held_out"]
    assert dev["person"]["es_ES"] == {"n": 1, "recall": 1.0, "typed": 0.0}  # covered, half of it as LOCATION
    assert dev["national_id"]["all"] == {"n": 1, "recall": 1.0, "typed": 0.0}  # ID_NUMBER is not NATIONAL_ID
    assert dev["phone"]["es_ES"] == {"n": 1, "recall": 0.0, "typed": 0.0}  # "56 78" left
    assert held["secret"]["en_GB"] == {"n": 1, "recall": 1.0, "typed": 1.0}
    assert held["person"]["all"] == {"n": 1, "recall": 0.0, "typed": 0.0}
    assert scores["by_detail"]["dev"]["es_dni"] == {"kind": "national_id", "n": 1, "recall": 1.0, "typed": 0.0}
    # precision: "DNI" (ORGANIZATION) overlaps no gold; "bob" lies in a region not scored; "pw" is false
    assert scores["precision"]["dev"]["type"]["all"] == {"predicted": 5, "false": 1, "precision": 0.8}
    assert scores["precision"]["dev"]["type"]["ORGANIZATION"] == {"predicted": 1, "false": 1, "precision": 0.0}
    assert scores["precision"]["held_out"]["locale"]["en_GB"] == {"predicted": 2, "false": 1, "precision": 0.5}
    assert scores["false_positives"] == [{"text": "DNI", "entity": "ORGANIZATION", "count": 1},
                                         {"text": "pw", "entity": "PERSON", "count": 1}]  # fmt: skip


def test_false_positives_per_100_pii_free_prompts() -> None:
    prompts = [("gsm8k", "Janet has 3 ducks."), ("gsm8k", "2 + 2?"), ("mmlu", "Who was Kant?"), ("mmlu", "x")]
    predicted = [[span_at(prompts[0][1], 0, 5, "PERSON")], [], [span_at(prompts[2][1], 8, 12, "PERSON"),
                 span_at(prompts[2][1], 0, 3, "ORGANIZATION")], []]  # fmt: skip
    out = score_pii_free(prompts, predicted)
    assert out["per_100"] == 75.0 and out["spans"] == 3 and out["prompts_flagged"] == 2
    assert out["by_type"] == {"PERSON": 50.0, "ORGANIZATION": 25.0}
    assert out["by_dataset"] == {"gsm8k": {"prompts": 2, "per_100": 50.0}, "mmlu": {"prompts": 2, "per_100": 100.0}}


class Finds(Detector):
    """Finds the given strings wherever they occur."""

    def __init__(self, *values: str) -> None:
        self.values = values

    def detect(self, text: str) -> list[Span]:
        found = [m for v in self.values for m in re.finditer(re.escape(v), text)]
        return [span_at(text, m.start(), m.end(), "ID_NUMBER") for m in found]


def test_leakage_audits_the_exact_egress_of_pseudonymize(tmp_path: Path) -> None:
    text = "Jo Bloggs (MRN 4471902) lives at 12 Acacia Avenue, Leeds LS1 4AB"
    sample = WorldSample(text, (_gold(text, "Jo Bloggs", "person"), _gold(text, "4471902", "medical_record"),
                                _gold(text, "12 Acacia Avenue, Leeds LS1 4AB", "address")), (), "en_GB", "t.1",
                         "chat", False)  # fmt: skip
    out = world_leakage([sample], Finds("4471902", "Leeds LS1 4AB"))
    assert out["kind"]["medical_record"] == {"inserted": 1, "left": 0, "leak_rate": 0.0, "partly": 0,
                                             "partly_rate": 0.0}  # fmt: skip
    assert out["kind"]["person"] == {"inserted": 1, "left": 1, "leak_rate": 1.0, "partly": 1, "partly_rate": 1.0}
    # the address as a whole did not leave, but "Acacia" and "Avenue" did
    assert out["kind"]["address"] == {"inserted": 1, "left": 0, "leak_rate": 0.0, "partly": 1, "partly_rate": 1.0}
    assert out["kind"]["all"]["inserted"] == 3


def test_the_leakage_pass_masks_each_text_with_the_spans_the_detection_pass_found(
    dataset: Callable[[str], object],
) -> None:
    from collections import Counter

    from tandemlm.bench.privacy_world import world_bench
    from tandemlm.privacy import PatternDetector

    for name in ("gsm8k", "mmlu", "humaneval"):
        dataset(name)  # skips when not cached
    asked: Counter[str] = Counter()

    class Counting(PatternDetector):
        def detect(self, text: str) -> list[Span]:
            asked[text] += 1
            return super().detect(text)

    result = world_bench(Counting(), per_locale=1, n_free=2, seed=0, n_latency=1)
    assert result["leakage"]["kind"]["all"]["inserted"] > 0
    once = [n for text, n in asked.items() if n == 1]
    # the warm-up and the one timed prompt (3 detector runs, 3 gatekeeper runs) are asked again; no other text is
    assert len(asked) - len(once) <= 2 and len(once) >= result["samples"]["total"] - 2


@pytest.mark.slow  # loads spaCy (about 2 s)
def test_bench_privacy_world_part_end_to_end(dataset: Callable[[str], object], tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from tandemlm.cli import main

    for name in ("gsm8k", "mmlu", "humaneval"):
        dataset(name)  # skips when not cached
    config = tmp_path / "c.yaml"
    config.write_text("models:\n  edge: {engine: scripted, replies: ok, location: edge}\n"
                      "  cloud: {engine: scripted, replies: ok, location: cloud}\n"
                      "pipelines:\n  cloud: {model: cloud}\n")  # fmt: skip
    out, js = tmp_path / "w.md", tmp_path / "w.json"
    args = ["bench", "privacy", "-c", str(config), "--parts", "world", "--world-samples", "3", "--pii-free", "6",
            "--out", str(out), "--json", str(js)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(js.read_text())["world"]
    assert data["samples"]["total"] == 4 * len(pii_world.LOCALES) and data["pii_free"]["prompts"] == 6
    assert data["samples"]["fresh"] == len(pii_world.LOCALES)  # half of 3 per locale, at least one
    assert {t["target"].split()[0] for t in data["targets"]} >= set(pii_world.KINDS)
    text = out.read_text()
    assert "### Targets" in text and "held-out templates" in text and "fresh templates" in text and "Date:" in text
