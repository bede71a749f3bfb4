"""Domestic bank account numbers (the ones that are not IBANs), by their national shapes and check digits.

Found without a cue word, because the shape and checksum say what they are:

- Spanish CCC (20 digits: bank 4, branch 4, two control digits, account 10; both controls mod 11),
- French RIB (23 characters: bank 5, branch 5, account 11, key 2; 97 − (89·bank + 15·branch + 3·account) mod 97),
- Portuguese NIB (21 digits: bank 4, branch 4, account 11, check 2; ISO 7064 mod 97-10),

each with or without spaces, dots or dashes between the groups. Found after the public code that routes to
the bank (`bank code + account`): the account is the next run of 6 to 18 digits after a UK sort code
(`12-34-56 12345678`), an Australian BSB (`062-000 1234567`), a US ABA routing number (checksum), a German
BLZ, an Italian ABI/CAB pair or an Indian IFSC, with only a few words or punctuation between
("sort code 12-34-56, account 12345678", "BSB/acct: 062-000 / 1234 5678"). The code itself routes to a
branch, not a person, and stays; a bare `ddd-ddd` or nine-digit code counts only where a bank word is near,
so a phone number or a GSM8K quantity is not an account.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tandemlm.privacy.spans import Span, span_at

_SEP = r"[ .\-]?"
CCC = re.compile(rf"(?<![\w.\-])\d{{4}}({_SEP})\d{{4}}\1\d{{2}}\1\d{{10}}(?![\w\-]|[.,]\d)")
RIB = re.compile(rf"(?<![\w.\-])\d{{5}}({_SEP})\d{{5}}\1[0-9A-Z]{{11}}\1\d{{2}}(?![\w\-]|[.,]\d)")
NIB = re.compile(rf"(?<![\w.\-])\d{{4}}({_SEP})\d{{4}}\1\d{{11}}\1\d{{2}}(?![\w\-]|[.,]\d)")
# public codes that route to a bank branch, each followed by the account: (regex, needs a bank word near)
CODES: tuple[tuple[re.Pattern[str], bool], ...] = (
    (re.compile(r"(?<![\w\-./])\d{2}-\d{2}-\d{2}(?![\w\-/])"), False),  # UK sort code
    (re.compile(r"(?<![\w\-./])\d{2} \d{2} \d{2}(?![\w\-/ ])|(?<![\w\-./])\d{6}(?![\w\-/])"), True),
    (re.compile(r"(?<![\w\-./])\d{3}-\d{3}(?![\w\-/])"), True),  # AU BSB
    (re.compile(r"(?<![\w\-./])\d{9}(?![\w\-/])"), True),  # US ABA routing (checksum below)
    (re.compile(r"(?<![\w\-./])\d{3} ?\d{3} ?\d{2}(?![\w\-/])"), True),  # DE BLZ
    (re.compile(r"(?<![\w\-./])\d{5}[ \-/]\d{5}(?![\w\-/])"), True),  # IT ABI CAB
    (re.compile(r"(?<![\w\-./])[A-Z]{4}0[A-Z0-9]{6}(?![\w\-/])"), False),  # IN IFSC
)
# between the code and the account: punctuation and a few words ("account", "acct no.", "Konto", "c/c n.")
GAP = re.compile(
    r"[ \t]*(?:[,;:/|(\-–][ \t]*)?(?:(?:bank|account|acct|acc|a/c|konto|kontonummer|conto|c/c|cuenta|compte|rekening"
    r"|conta|number|num|no|nr|n|nº|n°|#|nummer|numero|número|and|und|et|e|y|en|my|mi|mon|mein|mio|mijn|meu|the|is"
    r"|es|est|ist|è|é)(?![a-z])\.?[ \t]*[:#=]?[ \t]*){0,5}",
    re.IGNORECASE,
)
ACCOUNT = re.compile(r"(?<![\w\-.])\d{2,}(?:[ \-]\d{2,}){0,3}(?![\w\-]|[.,]\d)")
BANK_WORDS = re.compile(
    r"(?<![a-z])(?:bank|banking|bsb|aba|routing|sort|ifsc|blz|bankleitzahl|abi|cab|account|acct|a/c|konto|conto"
    r"|cuenta|compte|rekening|conta|payroll|direct debit|transfer|wire|iban|swift|bic|banca|banco|banque|bancari\w*"
    r"|bancaire|bancaria|bancario)(?![a-z])",
    re.IGNORECASE,
)
RIB_LETTERS = {ch: str(i % 9 + 1) for i, ch in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")} | {
    "S": "2", "T": "3", "U": "4", "V": "5", "W": "6", "X": "7", "Y": "8", "Z": "9"
}  # fmt: skip


def _compact(value: str) -> str:
    return re.sub(r"[ .\-]", "", value).upper()


def _ccc_control(digits: str) -> str:
    r = 11 - sum(int(d) * w for d, w in zip(digits, (1, 2, 4, 8, 5, 10, 9, 7, 3, 6), strict=True)) % 11
    return str({11: 0, 10: 1}.get(r, r))


def ccc_valid(value: str) -> bool:
    """Spanish CCC: 20 digits whose 9th digit controls bank and branch and 10th the account (mod 11)."""
    d = _compact(value)
    if not re.fullmatch(r"\d{20}", d) or len(set(d)) == 1:
        return False
    return _ccc_control("00" + d[:8]) == d[8] and _ccc_control(d[10:]) == d[9]


def rib_valid(value: str) -> bool:
    """French RIB: bank 5 digits, branch 5, account 11 (letters read as digits), key 2:
    89·bank + 15·branch + 3·account + key ≡ 0 (mod 97)."""
    v = _compact(value)
    if not re.fullmatch(r"\d{10}[0-9A-Z]{11}\d{2}", v) or len(set(v)) == 1:
        return False
    account = int("".join(RIB_LETTERS.get(ch, ch) for ch in v[10:21]))
    return (89 * int(v[:5]) + 15 * int(v[5:10]) + 3 * account + int(v[21:])) % 97 == 0


def nib_valid(value: str) -> bool:
    """Portuguese NIB: 21 digits whose last two are 98 − (the first 19 · 100 mod 97)."""
    d = _compact(value)
    if not re.fullmatch(r"\d{21}", d) or len(set(d)) == 1:
        return False
    return 98 - int(d[:19] + "00") % 97 == int(d[19:])


def aba_valid(value: str) -> bool:
    """US ABA routing number: nine digits, a Federal Reserve prefix, and 3-7-1 weights summing to 0 mod 10."""
    d = _compact(value)
    if not re.fullmatch(r"\d{9}", d) or not (int(d[:2]) <= 12 or 21 <= int(d[:2]) <= 32 or 61 <= int(d[:2]) <= 72
                                             or d[:2] == "80"):  # fmt: skip
        return False
    w = (3, 7, 1) * 3
    return sum(int(c) * k for c, k in zip(d, w, strict=True)) % 10 == 0


def find_accounts(text: str) -> Iterator[Span]:
    """Domestic account numbers: CCC, RIB and NIB by checksum, and the account after a bank code."""
    if not re.search(r"\d{5}", text) and not re.search(r"\d\d-\d\d-\d\d|\d{3}-\d{3}", text):
        return
    for regex, valid in ((CCC, ccc_valid), (RIB, rib_valid), (NIB, nib_valid)):
        for m in regex.finditer(text):
            if valid(m.group()):
                yield span_at(text, m.start(), m.end(), "ID_NUMBER", score=0.97)
    yield from _after_codes(text)


def _after_codes(text: str) -> Iterator[Span]:
    seen: set[int] = set()
    for regex, needs_word in CODES:
        for m in regex.finditer(text):
            code = m.group()
            if regex is CODES[3][0] and not aba_valid(code):
                continue
            if needs_word and not BANK_WORDS.search(text[max(0, m.start() - 48) : m.end() + 24]):
                continue
            gap = GAP.match(text, m.end())
            at = gap.end() if gap else m.end()
            acct = ACCOUNT.match(text, at)
            if acct is None or acct.start() in seen:
                continue
            digits = sum(ch.isdigit() for ch in acct.group())
            if not 6 <= digits <= 18 or (gap is not None and not gap.group() and at == m.end()):
                continue
            seen.add(acct.start())
            yield span_at(text, acct.start(), acct.end(), "ID_NUMBER", score=0.9)
