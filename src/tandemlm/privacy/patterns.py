"""Structured PII found by regular expressions and then validated (checksums, ranges, formats).

A candidate that fails validation is not reported: a Luhn-invalid number is not a card, an IBAN with a
bad mod-97 checksum is not an IBAN, 000-12-3456 is not an SSN. Each finder is `(text) -> Iterator[Span]`.
Three finders are rules rather than validations, each with its own precision rules: secrets assigned to a
key that names one (secrets.py), street addresses (addresses.py) and names after a cue (names.py).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

from tandemlm.privacy import phones
from tandemlm.privacy.accounts import find_accounts
from tandemlm.privacy.addresses import find_addresses
from tandemlm.privacy.identifiers import find_cued_ids, find_national_ids
from tandemlm.privacy.names import find_names
from tandemlm.privacy.passports import find_passports
from tandemlm.privacy.secrets import find_assigned_secrets
from tandemlm.privacy.spans import Span, span_at

Finder = Callable[[str], Iterator[Span]]

EMAIL = re.compile(r"(?<![\w.+:/-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])")
# 13-19 digits, optionally grouped by single spaces or dashes
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
SSN = re.compile(r"(?<![\d-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\d-])")
SSN_CONTEXT = re.compile(r"\b(?:ssn|social security|ss#|ssn#)", re.IGNORECASE)
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]|\.\d)")
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
URL = re.compile(r"\bhttps?://[^\s<>\"']+", re.IGNORECASE)
MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
DATE = re.compile(
    rf"\b(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}"
    rf"|(?:{MONTHS}|[a-z]{{3}}\.?) \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)? (?:of )?(?:{MONTHS}),? \d{{4}})\b",
    re.IGNORECASE,
)
DOB_CONTEXT = re.compile(r"\b(?:born|birth|birthday|dob|d\.o\.b\.?|date of birth|b-day)\b", re.IGNORECASE)
KEY_PREFIXES = re.compile(
    r"(?<![\w-])(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{40,}|(?:AKIA|ASIA)[0-9A-Z]{16}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
    r"|glpat-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,}"
    r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----"
)
TOKEN = re.compile(r"(?<![\w/+-])[A-Za-z0-9_+/-]{20,}={0,2}(?![\w/+=-])")  # `session=<token>` too
SECRET_PARAMS = frozenset(
    ["token", "access_token", "refresh_token", "id_token", "api_key", "apikey", "key", "secret", "client_secret",
     "password", "pwd", "pass", "sig", "signature", "auth", "code", "session", "sessionid", "sid",
     "x-amz-signature", "x-amz-credential", "x-amz-security-token"]
)  # fmt: skip
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GI": 23, "GL": 18, "GR": 27, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29,
}  # fmt: skip


# ---- validators ---------------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_valid(text: str) -> bool:
    """13-19 digits with a major network's leading digit, consistent grouping, and a valid Luhn checksum."""
    digits = re.sub(r"[ -]", "", text)
    separators = set(re.findall(r"[ -]", text))
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and len(separators) <= 1 and luhn_valid(digits)


def iban_valid(text: str) -> bool:
    """Country length and the ISO 13616 mod-97 checksum."""
    code = text.replace(" ", "").upper()
    if IBAN_LENGTHS.get(code[:2]) != len(code):
        return False
    rearranged = code[4:] + code[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """The SSA's rules: no area 000, 666 or 900-999, no group 00, no serial 0000, and not a famous sample."""
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return f"{area}{group}{serial}" not in {"078051120", "219099999", "123456789"}


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = {ch: text.count(ch) for ch in set(text)}
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def looks_random(token: str) -> bool:
    """A high-entropy token: mixed letter classes and digits, like a key or password, unlike a word or number."""
    classes = sum(bool(re.search(p, token)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    if classes < 2 or not re.search("[0-9]", token) or token.isdigit():
        return False
    if re.fullmatch(r"[0-9a-fA-F]+", token):
        return len(token) >= 32 and entropy(token) >= 3.0
    return entropy(token) >= 3.7


def _date(text: str) -> bool:
    formats = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%m-%d-%Y", "%d-%m-%Y", "%m/%d/%y", "%d.%m.%y")
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text).replace(",", "").replace(" of ", " ").replace(".", ". ")
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    for fmt in (*formats, "%B %d %Y", "%b. %d %Y", "%b %d %Y", "%d %B %Y"):
        for candidate in (text, cleaned):
            try:
                datetime.strptime(candidate, fmt)
                return True
            except ValueError:
                continue
    return False


# ---- finders ------------------------------------------------------------------------------------------


def find_emails(text: str) -> Iterator[Span]:
    for m in EMAIL.finditer(text):
        yield span_at(text, m.start(), m.end(), "EMAIL")


def find_cards(text: str) -> Iterator[Span]:
    for m in CARD.finditer(text):
        if card_valid(m.group()):
            yield span_at(text, m.start(), m.end(), "CREDIT_CARD")


def find_ibans(text: str) -> Iterator[Span]:
    for m in IBAN.finditer(text):
        candidate = m.group()
        # the greedy match may swallow a following word; try the longest valid prefix at this start
        for end in range(len(candidate), 14, -1):
            if candidate[end - 1] != " " and iban_valid(candidate[:end]):
                yield span_at(text, m.start(), m.start() + end, "IBAN")
                break


def find_ssns(text: str) -> Iterator[Span]:
    for m in SSN.finditer(text):
        contiguous = not m.group(2)
        if contiguous and not SSN_CONTEXT.search(text[max(0, m.start() - 40) : m.start()]):
            continue  # nine bare digits are an SSN only where the text says so
        if ssn_valid(m.group(1), m.group(3), m.group(4)):
            yield span_at(text, m.start(), m.end(), "US_SSN")


def find_ips(text: str) -> Iterator[Span]:
    for regex in (IPV4, IPV6):
        for m in regex.finditer(text):
            candidate = m.group().strip(":") if regex is IPV4 else m.group()
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            groups = [g for g in candidate.split(":") if g]
            if regex is IPV6 and (candidate.count(":") < 2 or len(groups) < 2):
                continue  # "::" and "::1" (a slice, loopback) identify nobody
            yield span_at(text, m.start(), m.end(), "IP_ADDRESS")


def find_birth_dates(text: str) -> Iterator[Span]:
    """A date within 40 characters after (or 20 before) a word like born, birthday or DOB."""
    for m in DATE.finditer(text):
        before = re.split(r"[.!?\n]\s", text[max(0, m.start() - 40) : m.start()])[-1]  # same sentence only
        after = re.split(r"[.!?\n]\s", text[m.end() : m.end() + 20])[0]
        if (DOB_CONTEXT.search(before) or DOB_CONTEXT.search(after)) and _date(m.group()):
            yield span_at(text, m.start(), m.end(), "DATE_OF_BIRTH")


def find_url_tokens(text: str) -> Iterator[Span]:
    """The values of secret-looking query parameters (token=, key=, sig= ...) and passwords in user:pass@host."""
    for m in URL.finditer(text):
        url = m.group().rstrip(".,);]")
        parts = urlsplit(url)
        if parts.password:
            at = url.index("@")
            start = m.start() + url.rindex(":", 0, at) + 1
            yield span_at(text, start, m.start() + at, "URL_TOKEN")
        offset = m.start() + len(url) - len(parts.query) - (len(parts.fragment) + 1 if parts.fragment else 0)
        for key, value in parse_qsl(parts.query, keep_blank_values=False):
            if key.lower() in SECRET_PARAMS and len(value) >= 4:
                at = text.find(f"{key}=", offset)
                if at >= 0 and text.startswith(value, at + len(key) + 1):
                    start = at + len(key) + 1
                    yield span_at(text, start, start + len(value), "URL_TOKEN")


def find_secrets(text: str) -> Iterator[Span]:
    """Known key formats, values assigned to keys that name a secret (secrets.py), and high-entropy tokens."""
    for m in KEY_PREFIXES.finditer(text):
        yield span_at(text, m.start(), m.end(), "SECRET")
    yield from find_assigned_secrets(text)
    for m in TOKEN.finditer(text):
        if looks_random(m.group()):
            yield span_at(text, m.start(), m.end(), "SECRET", score=0.8)


def find_phones(text: str, regions: Sequence[str] | None = None) -> Iterator[Span]:
    """Phone numbers of every region, assigned or not, but not quantities (see phones.py): international
    formats anywhere, national ones of `regions` (default `phones.DEFAULT_REGIONS`) and of the text's locale."""
    return phones.find_phones(text, regions)


def find_ids(text: str) -> Iterator[Span]:
    """ID-like values after a cue (identifiers.py), passports near one (passports.py), and domestic bank
    accounts by their shape and check digits or after a bank code (accounts.py)."""
    yield from find_cued_ids(text)
    yield from find_passports(text)
    yield from find_accounts(text)


FINDERS: dict[str, Finder] = {
    "EMAIL": find_emails,
    "CREDIT_CARD": find_cards,
    "IBAN": find_ibans,
    "US_SSN": find_ssns,
    "IP_ADDRESS": find_ips,
    "DATE_OF_BIRTH": find_birth_dates,
    "URL_TOKEN": find_url_tokens,
    "SECRET": find_secrets,
    "PHONE": find_phones,
    "ADDRESS": find_addresses,
    "PERSON": find_names,
    "NATIONAL_ID": find_national_ids,
    "ID_NUMBER": find_ids,
}
