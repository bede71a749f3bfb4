"""Valid national identifiers, medical and bank numbers for the multinational PII benchmark (pii_world.py).

Each generator draws a random value in the country's format with its check digits computed as the issuer
does (mod-11 weights, Verhoeff, mod-97, the codice fiscale's odd/even tables), so a detector that checks
checksums sees values it must accept. None of them is a real person's number; they are valid in form only.

The tables (Verhoeff, the codice fiscale's, the DNI letters) are written out here again rather than imported from
privacy/identifiers.py on purpose: a generator that shared the detector's tables would agree with a wrong one.
"""

from __future__ import annotations

import random
import re
import string
import unicodedata
from collections.abc import Sequence

DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
CF_ODD = dict(zip(string.digits + string.ascii_uppercase,
                  [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12,
                   14, 16, 10, 22, 25, 24, 23], strict=True))  # fmt: skip
CF_MONTHS = "ABCDEHLMPRST"
VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]  # fmt: skip
VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]  # fmt: skip
VERHOEFF_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]
BELFIORE = ("H501", "F205", "F839", "L219", "G273", "D612", "A944", "L736", "A662", "C351", "G224", "D969", "Z404")


def random_digits(rng: random.Random, n: int, first: str = string.digits) -> str:
    return rng.choice(first) + "".join(rng.choice(string.digits) for _ in range(n - 1))


def from_pattern(rng: random.Random, pattern: str) -> str:
    """`#` a digit, `@` an upper-case letter, anything else as written."""
    return "".join(rng.choice(string.digits) if c == "#" else rng.choice(string.ascii_uppercase) if c == "@" else c
                   for c in pattern)  # fmt: skip


def _weighted_mod(digits: str, weights: Sequence[int], mod: int) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % mod


def us_ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    sep = rng.choice(["-", "-", " ", ""])
    return f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"


def uk_nino(rng: random.Random) -> str:
    while True:
        a, b = rng.choice("ABCEGHJKLMNOPRSTWXYZ"), rng.choice("ABCEGHJKLMNPRSTWXYZ")
        if a + b not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            break
    d = random_digits(rng, 6)
    suffix = rng.choice("ABCD")
    return rng.choice([f"{a}{b} {d[:2]} {d[2:4]} {d[4:]} {suffix}", f"{a}{b}{d}{suffix}", f"{a}{b} {d} {suffix}"])


def au_tfn(rng: random.Random) -> str:
    while True:
        body = random_digits(rng, 8, "1234567")
        last = [d for d in range(10) if (_weighted_mod(body, [1, 4, 3, 7, 5, 8, 6, 9], 11) + 10 * d) % 11 == 0]
        if last:
            n = body + str(last[0])
            return rng.choice([f"{n[:3]} {n[3:6]} {n[6:]}", n])


def verhoeff_check(digits: str) -> int:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = VERHOEFF_D[c][VERHOEFF_P[(i + 1) % 8][int(ch)]]
    return VERHOEFF_INV[c]


def in_aadhaar(rng: random.Random) -> str:
    body = random_digits(rng, 11, "23456789")
    n = body + str(verhoeff_check(body))
    return rng.choice([f"{n[:4]} {n[4:8]} {n[8:]}", n, f"{n[:4]}-{n[4:8]}-{n[8:]}"])


def in_pan(rng: random.Random) -> str:
    return from_pattern(rng, "@@@") + rng.choice("PPPPCHF") + from_pattern(rng, "@####@")


def es_dni(rng: random.Random) -> str:
    n = random_digits(rng, 8)
    letter = DNI_LETTERS[int(n) % 23]
    return rng.choice([f"{n}{letter}", f"{n}-{letter}", f"{n[:2]}.{n[2:5]}.{n[5:]}-{letter}"])


def es_nie(rng: random.Random) -> str:
    prefix, n = rng.choice("XYZ"), random_digits(rng, 7)
    letter = DNI_LETTERS[int(str("XYZ".index(prefix)) + n) % 23]
    return rng.choice([f"{prefix}{n}{letter}", f"{prefix}-{n}-{letter}"])


def fr_nir(rng: random.Random, sex: str) -> str:
    dept = rng.choice([f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B"])
    body = f"{1 if sex == 'M' else 2}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}{dept}"
    body += f"{rng.randint(1, 990):03d}{rng.randint(1, 999):03d}"
    key = 97 - int(body.replace("2A", "19").replace("2B", "18")) % 97
    spaced = f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:]} {key:02d}"
    return rng.choice([spaced, f"{body}{key:02d}", f"{body} {key:02d}"])


def de_steuer_id(rng: random.Random) -> str:
    while True:
        chosen = rng.sample(string.digits, 9)
        first10 = [*chosen, rng.choice(chosen)]  # exactly one digit twice (the rule since 2016)
        rng.shuffle(first10)
        if first10[0] != "0":
            break
    product = 10
    for d in first10:
        s = (int(d) + product) % 10 or 10
        product = s * 2 % 11
    n = "".join(first10) + str((11 - product) % 10)
    return rng.choice([f"{n[:2]} {n[2:5]} {n[5:8]} {n[8:]}", n, f"{n[:2]}/{n[2:5]}/{n[5:8]}/{n[8:]}"])


def it_codice_fiscale(rng: random.Random, first: str, last: str, sex: str) -> str:
    def letters(name: str) -> tuple[str, str]:
        plain = re.sub(r"[^A-Z]", "", unicodedata.normalize("NFKD", name).upper())
        return "".join(c for c in plain if c not in "AEIOU"), "".join(c for c in plain if c in "AEIOU")

    cons, vowels = letters(last)
    code = (cons + vowels + "XXX")[:3]
    cons, vowels = letters(first)
    code += cons[0] + cons[2] + cons[3] if len(cons) > 3 else (cons + vowels + "XXX")[:3]
    day = rng.randint(1, 28) + (40 if sex == "F" else 0)
    code += f"{rng.randint(40, 99):02d}{rng.choice(CF_MONTHS)}{day:02d}{rng.choice(BELFIORE)}"
    total = sum(CF_ODD[c] if i % 2 == 0 else int(c, 36) - (10 if c.isalpha() else 0) for i, c in enumerate(code))
    return code + chr(65 + total % 26)


def nl_bsn(rng: random.Random) -> str:
    while True:
        body = random_digits(rng, 8, "1234567")
        check = _weighted_mod(body, [9, 8, 7, 6, 5, 4, 3, 2], 11)
        if check < 10:
            n = body + str(check)
            return rng.choice([n, n, f"{n[:4]}.{n[4:6]}.{n[6:]}", f"{n[:3]} {n[3:6]} {n[6:]}"])


def pt_nif(rng: random.Random) -> str:
    body = random_digits(rng, 8, "123")
    r = _weighted_mod(body, [9, 8, 7, 6, 5, 4, 3, 2], 11)
    n = body + str(0 if r < 2 else 11 - r)
    return rng.choice([n, n, f"{n[:3]} {n[3:6]} {n[6:]}"])


def uk_nhs(rng: random.Random) -> str:
    while True:
        body = random_digits(rng, 9, "4679")
        check = 11 - _weighted_mod(body, range(10, 1, -1), 11)
        if check != 10:
            n = body + str(check % 11)
            return rng.choice([f"{n[:3]} {n[3:6]} {n[6:]}", n, f"{n[:3]}-{n[3:6]}-{n[6:]}"])


def au_medicare(rng: random.Random) -> str:
    body = random_digits(rng, 8, "23456")
    n = body + str(_weighted_mod(body, [1, 3, 7, 9, 1, 3, 7, 9], 10)) + str(rng.randint(1, 9))
    return rng.choice([f"{n[:4]} {n[4:9]} {n[9]}", n, f"{n[:4]} {n[4:9]}-{n[9]}"])


def de_kvnr(rng: random.Random) -> str:
    letter, body = rng.choice(string.ascii_uppercase), random_digits(rng, 8)
    total = 0
    for i, d in enumerate(f"{ord(letter) - 64:02d}{body}"):
        product = int(d) * (1 if i % 2 == 0 else 2)
        total += product // 10 + product % 10
    return f"{letter}{body}{total % 10}"


def us_routing(rng: random.Random) -> str:
    body = rng.choice([f"{p:02d}" for p in (*range(1, 13), *range(21, 33))]) + random_digits(rng, 6)
    check = -(3 * (int(body[0]) + int(body[3]) + int(body[6])) + 7 * (int(body[1]) + int(body[4]) + int(body[7]))
              + int(body[2]) + int(body[5])) % 10  # fmt: skip
    return body + str(check)


def es_ccc(rng: random.Random) -> str:
    def dc(digits: str) -> str:
        r = 11 - _weighted_mod(digits, [1, 2, 4, 8, 5, 10, 9, 7, 3, 6], 11)
        return str({11: 0, 10: 1}.get(r, r))

    bank, branch, account = (
        rng.choice(["2100", "0049", "0182", "2038", "0081"]),
        random_digits(rng, 4),
        random_digits(rng, 10),
    )
    control = dc("00" + bank + branch) + dc(account)
    return rng.choice([f"{bank} {branch} {control} {account}", f"{bank}{branch}{control}{account}",
                       f"{bank}-{branch}-{control}-{account}"])  # fmt: skip


def fr_rib(rng: random.Random) -> str:
    bank, branch, account = (
        rng.choice(["30004", "30002", "10278", "20041", "30066"]),
        random_digits(rng, 5),
        random_digits(rng, 11),
    )
    key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
    return rng.choice([f"{bank} {branch} {account} {key:02d}", f"{bank}{branch}{account}{key:02d}"])


def nl_account(rng: random.Random) -> str:
    while True:
        body = random_digits(rng, 8, "1234")
        check = -_weighted_mod(body, [9, 8, 7, 6, 5, 4, 3, 2], 11) % 11
        if check < 10:
            n = body + str(check)
            return rng.choice([f"{n[:2]}.{n[2:4]}.{n[4:6]}.{n[6:]}", n])


def pt_nib(rng: random.Random) -> str:
    body = rng.choice(["0033", "0035", "0007", "0010", "0036"]) + random_digits(rng, 4) + random_digits(rng, 11)
    n = body + f"{98 - int(body + '00') % 97:02d}"
    return rng.choice([f"{n[:4]} {n[4:8]} {n[8:19]} {n[19:]}", n])
