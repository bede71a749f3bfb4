"""Phone numbers of every region, assigned or not, without taking quantities, years or prices for phones.

One regex finds phone-shaped candidates (digits with the separators phones use); shape rules drop what
reads as a quantity (thousands groups, decimals, dates, year ranges, lists of small numbers, arithmetic);
then Google's libphonenumber checks each survivor against a list of regions. A number counts when:

- it is international (`+CC`, `00CC`) and of a possible length for its country;
- a phone word stands just before it (call, tel, mobile, teléfono, Handy, portable, bel, ligue, ...) and it
  is of a possible length in some region;
- it is written the way a national number is dialled (trunk prefix `0`, an area code in parentheses, the
  North American `212-555-0143` shape) and is of a possible length in some region: reserved and fictional
  ranges (UK 07700 900xxx, US 555-01xx, AU 0491 570 xxx) are possible but not valid, and still masked;
- or it is grouped like a phone (three or more groups, or two of four digits or more: 98765 43210) and valid
  in some region whose national format it matches (a region with a trunk prefix only counts numbers
  written with it).

Regions are tried with the text's own first: the country codes of its `+CC` numbers, its e-mail and web
domains, and its phone words' languages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from tandemlm.privacy.identifiers import fold
from tandemlm.privacy.spans import Span, span_at

#: Regions whose national formats count by default: broad, and cheap since only phone-shaped text is tried.
DEFAULT_REGIONS: tuple[str, ...] = (
    "US", "CA", "GB", "IE", "AU", "NZ", "IN", "ZA", "DE", "AT", "CH", "FR", "BE", "LU", "NL", "ES", "PT", "IT",
    "GR", "SE", "NO", "DK", "FI", "PL", "CZ", "RO", "HU", "TR", "IL", "AE", "BR", "MX", "AR", "CO", "CL", "PE",
    "JP", "CN", "KR", "SG", "HK", "PH", "MY", "NG", "KE",
)  # fmt: skip

# digits with phone separators: one space, dot, dash or slash between digits; a parenthesised group. A comma
# before is a CSV field separator ("...,+12015550123") unless a digit stands before it (thousands: 1,234,567).
CANDIDATE = re.compile(
    r"(?<![\w+#@/.\-])(?<!\d,)"
    r"(?:\+|\(\+?(?=\d))?\d(?:\d|\((?=\d)|(?<=\d)\)|[ \u00a0.\-/](?=[\d(])){6,24}(?![\w@]|[.,]\d)"
)
DATE_SHAPE = re.compile(r"\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{2,4}")
YEAR = re.compile(r"(?:1[5-9]|20)\d\d")
THOUSANDS = re.compile(r"[1-9]\d{0,2}([ \u00a0.])\d{3}(?:\1\d{3})*")
NANP = re.compile(r"(?:\+?1[ .\-]?)?(?:\([2-9]\d\d\) ?|[2-9]\d\d[ .\-])[2-9]\d\d[ .\-]\d{4}")
PARENS_AREA = re.compile(r"\(\+?\d{1,5}\)")
LOCAL_US = re.compile(r"[2-9]\d\d[-. ]\d{4}")  # seven digits: a phone only in the fiction range or after a cue
MATH_BEFORE = re.compile(r"(?:[+*/×÷^<>]|(?<![\w\"'\]])=)\s*$")  # `to=` is a log field, `x = ` arithmetic
MATH_AFTER = re.compile(r"\s*[=+*/×÷^<>%]")
PHONE_WORDS: dict[str, tuple[str, ...]] = {  # a phone word → the regions its language suggests
    "phone|telephone|tel|mobile|mob|cell|cellphone|fax|whatsapp|sms|text me|call|calling|ring|dial|hotline": (),
    "telefono|movil|celular|llama|llamame|llamar|llamenos|fijo": ("ES", "MX", "AR", "CO", "CL", "PE"),
    "portable|appelez|appeler|appelle|appelez-moi|joindre|joignable": ("FR", "BE", "CH", "LU"),
    "telefon|handy|mobil|rufnummer|anrufen|ruf|festnetz|durchwahl": ("DE", "AT", "CH"),
    "cellulare|chiama|chiamare|chiamami": ("IT",),
    "telefoon|mobiel|bel|bellen|belt": ("NL", "BE"),
    "telefone|telemovel|ligue|ligar|liga|contato|contacto|contactar|contacte": ("PT", "BR", "ES"),
    "contact|contactez|kontakt|contatto|contacteer": (),
    "電話|携帯": ("JP",),
}
PHONE_CUE = re.compile(rf"(?<![a-z])(?:{'|'.join(PHONE_WORDS)})(?![a-z])[^!?\n\d]{{0,24}}$")
_WORD_REGIONS = [(re.compile(rf"(?<![a-z])(?:{words})(?![a-z])"), regions) for words, regions in PHONE_WORDS.items()]
TLD_REGIONS = {"uk": "GB", "ie": "IE", "au": "AU", "nz": "NZ", "in": "IN", "za": "ZA", "de": "DE", "at": "AT",
               "ch": "CH", "fr": "FR", "be": "BE", "nl": "NL", "es": "ES", "pt": "PT", "it": "IT", "br": "BR",
               "mx": "MX", "ar": "AR", "jp": "JP", "se": "SE", "no": "NO", "dk": "DK", "fi": "FI", "pl": "PL",
               "ca": "CA", "sg": "SG"}  # fmt: skip
TLD = re.compile(r"[@.][a-z0-9-]+\.(?:co\.|com\.)?([a-z]{2})\b", re.IGNORECASE)
COUNTRY_CODE = re.compile(r"(?<![\w+])(?:\+|00)(\d{1,3})")


def locale_regions(text: str) -> tuple[str, ...]:
    """Regions the text itself points to: its +CC numbers, its domains, its phone words' languages."""
    import phonenumbers

    found: list[str] = []
    for m in COUNTRY_CODE.finditer(text):
        for length in (1, 2, 3):  # country codes are prefix-free: the first that exists is the one
            regions = phonenumbers.region_codes_for_country_code(int(m.group(1)[:length]))
            if regions and regions != ("001",):
                found += regions
                break
    found += [TLD_REGIONS[m.group(1).lower()] for m in TLD.finditer(text) if m.group(1).lower() in TLD_REGIONS]
    folded = fold(text)
    for regex, regions in _WORD_REGIONS:
        if regions and regex.search(folded):
            found += regions
    return tuple(dict.fromkeys(r for r in found if r != "ZZ"))


def find_phones(text: str, regions: Sequence[str] | None = None) -> Iterator[Span]:
    """Phone numbers: international ones anywhere, national ones of `regions` (default `DEFAULT_REGIONS`)
    or of the text's own locale. The score says how sure: 1.0 for a valid international number, less for a
    national one (a checksum-validated `NATIONAL_ID` of the same digits outranks it) or a merely possible one."""
    candidates = [m for m in CANDIDATE.finditer(text) if 8 <= sum(ch.isdigit() for ch in m.group()) <= 17
                  or LOCAL_US.fullmatch(m.group())]  # fmt: skip
    if not candidates:
        return
    import phonenumbers

    hinted = locale_regions(text)
    ordered = tuple(dict.fromkeys((*hinted, *(DEFAULT_REGIONS if regions is None else regions))))
    for m in candidates:
        start, end = m.span()
        if text[end - 1] == ")" and text.count("(", start, end) < text.count(")", start, end):
            end -= 1  # "(ann@example.com, +44 20 7946 0958)": the parenthesis closes the aside
        score = _score(text, start, end, ordered, hinted, phonenumbers)
        if score:
            yield span_at(text, start, end, "PHONE", score=score)


def _score(text: str, start: int, end: int, regions: tuple[str, ...], hinted: tuple[str, ...], pn: Any) -> float:
    """How surely text[start:end] is a phone number (0.0: it is not one)."""
    raw = text[start:end]
    digits = re.sub(r"\D", "", raw)
    if raw.count("(") != raw.count(")") or raw.count("(") > 1:
        return 0.0
    if DATE_SHAPE.fullmatch(raw) or (re.fullmatch(r"\d+\.\d+", raw) and not re.match(r"0\d", raw)):
        return 0.0
    groups = [g for g in re.split(r"\D+", raw.replace("(0)", "")) if g]
    if sum(len(g) == 1 for g in groups) > 1 or (len(groups) > 1 and len(groups[-1]) == 1):
        return 0.0  # small numbers (ISBN parts, versions, a list) rather than the groups of a phone number
    if len(groups) > 1 and all(YEAR.fullmatch(g) for g in groups):
        return 0.0  # years
    if MATH_BEFORE.search(text[max(0, start - 3) : start]) or MATH_AFTER.match(text, end):
        return 0.0
    if raw.startswith(("+", "(+")) or (raw.startswith("00") and not raw.startswith("000")):
        number = raw if "+" in raw else "+" + raw[2:]
        return _international(number, pn)
    cued = bool(PHONE_CUE.search(fold(text[max(0, start - 32) : start])))
    if re.fullmatch(r"555[-. ]01\d\d", raw) or (cued and LOCAL_US.fullmatch(raw)):
        return 0.8  # a US local number: the 555-01xx range for fiction anywhere, any other after a phone word
    if "/" in raw and not cued and not (digits[0] == "0" and raw.count("/") == 1):
        return 0.0  # a ratio or fraction, unless written like a German 030/901820
    if THOUSANDS.fullmatch(raw) and not cued:
        return 0.85 if any(_valid(raw, r, pn) for r in hinted) else 0.0  # 912 345 678 is a phone only in Spain
    trunk = digits[0] == "0"
    nanp = bool(NANP.fullmatch(raw)) and any(r in ("US", "CA") for r in regions)
    strong = cued or trunk or nanp or bool(PARENS_AREA.match(raw.lstrip("+1 ")))
    valid = possible = False
    for region in regions:
        if not _writes_trunk(digits, region):
            continue
        number = _parse(raw, region, pn)
        if number is None:
            continue
        if pn.is_valid_number(number):
            valid = True
            break
        possible = possible or (strong and pn.is_possible_number(number) and _reserved_ok(digits, region))
    grouped = len(groups) >= 3 or (len(groups) == 2 and min(map(len, groups)) >= 4 and len(digits) >= 9)
    grouped = grouped and not YEAR.fullmatch(groups[0])  # 2023-44817 is a reference, not a phone
    if valid and (strong or grouped):
        return 0.95 if strong else 0.8
    return 0.85 if possible else 0.0


def _international(number: str, pn: Any) -> float:
    try:
        parsed = pn.parse(number, None)
    except pn.NumberParseException:
        return 0.0
    if pn.is_valid_number(parsed):
        return 1.0
    known = pn.region_code_for_country_code(parsed.country_code) != "ZZ"
    return 0.9 if known and pn.is_possible_number(parsed) else 0.0


def _valid(raw: str, region: str, pn: Any) -> bool:
    number = _parse(raw, region, pn)
    return number is not None and bool(pn.is_valid_number(number))


def _parse(raw: str, region: str, pn: Any) -> Any:
    try:
        return pn.parse(raw, region)
    except pn.NumberParseException:
        return None


@cache
def _trunk_prefix(region: str) -> str | None:
    import phonenumbers

    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return None if meta is None else meta.national_prefix


def _writes_trunk(digits: str, region: str) -> bool:
    """Whether `digits` is how a number of `region` is written nationally: with its trunk prefix where it
    has one (a UK number is written 020..., never 20...); NANP's leading 1 is optional, and its area codes
    begin with 2-9."""
    if region in ("US", "CA"):
        national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
        return national[0] in "23456789"
    prefix = _trunk_prefix(region)
    return not prefix or digits.startswith(prefix)


def _reserved_ok(digits: str, region: str) -> bool:
    """A possible-but-unassigned number must still not be all one digit (000 0000 0000 is no phone)."""
    return len(set(digits.lstrip("0"))) > 1
