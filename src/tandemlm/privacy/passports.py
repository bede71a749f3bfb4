"""Passport numbers: the shapes countries issue, near a word for a passport in any of seven languages.

A passport number has no checksum a reader can verify, so the cue decides, but not only right before the
value (identifiers.py does that): here the value may sit further on in the sentence or the record
("my passport, which expires next year, is X", `doc_type: passport` then `doc_number: X`), or before the
cue ("X (passport)"). Cue words, matched in folded text with code keys split into words (`passportNo`,
`passport_number`, `PASSPORT-NR`): passport, travel document, pasaporte, documento de viaje, passeport,
document de voyage, Reisepass, Pass-Nr., Reisedokument, passaporto, documento di viaggio, paspoort,
reisdocument, passaporte, documento de viagem.

Shapes (compact, upper case): US 9 digits or a letter and 8; UK 9 digits; DE C, F-H, J-N, P, R, T, V-Z or
digits, 9 long, starting with C-K; FR 2 digits, 2 letters, 5 digits; ES 3 letters and 6 digits; IT 2
letters and 7 digits; NL 2 letters, 6 letters or digits, a digit; PT, CA, BR 1-2 letters and 6 digits; IN,
AU, CH a letter (or two) and 7 digits; CN, JP, KR 1-2 letters and 7-8 digits; else 6-10 capitals and
digits with at least five digits.

Precision: after the cue, the value is the first ID-like token (letters and digits, five or more with a
digit) in the same paragraph within 120 characters, skipping dates, years and times; if that token has no
passport shape, nothing is reported, so a phone number further on is never taken for the passport. Before
the cue, only a token at most two words away ("X (passport)", "X is my passport number").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tandemlm.privacy.identifiers import fold
from tandemlm.privacy.spans import Span, span_at

CUE = re.compile(
    r"passports?|travel ?documents?|pasaportes?|documentos? de viaje|passeports?|documents? de voyage"
    r"|reisepass(?:es)?|reisepasse|reisedokument(?:e|s)?|passaport[oi]|documenti? di viaggio|paspoort(?:en)?"
    r"|reisdocument(?:en)?|passaportes?|documentos? de viagem|ppt|pass"
)
GLUED = re.compile(r"(?:nummer|number|numero|num|nr|no|id)(?![a-z])")
SHAPES = re.compile(
    r"\d{9}|[A-Z]\d{8}|[CFGHJK][CFGHJKLMNPRTVWXYZ0-9]{8}|\d{2}[A-Z]{2}\d{5}|[A-Z]{3}\d{6}|[A-Z]{2}\d{7}"
    r"|[A-Z]{2}[A-Z0-9]{6}\d|[A-Z]{1,2}\d{6,8}"
)
# an ID-like token: five or more letters and digits with one digit, maybe a space or dash after a letter prefix
TOKEN = re.compile(r"(?<![\w@/.\-])(?:[A-Z]{1,3}[ \-](?=\d))?[A-Za-z0-9]*\d[A-Za-z0-9]*(?![\w@\-]|[.,/]\d)")
NOT_A_VALUE = re.compile(
    r"(?:1[5-9]|20)\d\d|\d{1,2}(?:st|nd|rd|th)|\d+(?:[.,:]\d+)*|\d{1,2}[a-z]{1,3}",
)
DATE_OR_TIME = re.compile(
    r"\d{1,4}([/.\-])\d{1,2}\1\d{1,4}|\d{1,2}:\d\d(?::\d\d)?|\d{4}-\d\d-\d\dT[\d:.]+Z?|\d{1,2}/\d{2,4}"
)
# "pass" alone is mostly the verb or a ticket ("boarding pass", "bus pass"): only as German Pass-Nr./Passnummer
PASS_ALONE = re.compile(r"pass[ _.\-:#]*(?:nummer|nr|no|num)(?![a-z])")
MAX_AFTER = 120
# "X (passport)", "X is my passport number": the token, then at most two words, then the cue
BEFORE = re.compile(r"(?<![\w@/.\-])([A-Z0-9][A-Z0-9 \-]{4,12}[A-Z0-9])((?:[^\w\n]*[^\W\d]+){0,2}[^\w\n]*)$")
SENTENCE_END = re.compile(r"(?<!\b[Nn][or])(?<!\b[Nn][º°])[.!?](?:\s+[A-Z]|\s*$)")
# a field or sentence about something else ends the search: "Passport: pending. Phone: 612345678"
OTHER_FIELD = re.compile(
    r"(?<![a-z])(?:phone|tel|telephone|telefono|telefone|telefoon|mobile|mobil|cell|email|e-mail|mail"
    r"|address|adresse|direccion|indirizzo|adres|morada|iban|account|acct|konto|cuenta|compte|conto|rekening|conta"
    r"|ssn|nino|dni|nie|nif|bsn|insee|steuer|fiscal|employee|member|student|customer|order|invoice|booking|ticket"
    r"|flight|vuelo|vol|flug|volo|vlucht|voo|reservation|reserva|card|tarjeta|carte|karte|carta|kaart|cartao)"
    r"(?![a-z])"
)


def _folded(text: str) -> str:
    """Lower case without accents, one character per character of `text`, `_` read as a space."""
    if text.isascii():
        return text.lower().replace("_", " ")
    out = fold(text).replace("_", " ")
    return out if len(out) == len(text) else "".join(" " if ch == "_" else (fold(ch) or " ")[0] for ch in text)


def _word_edge(text: str, low: str, at: int) -> bool:
    """Whether a word of text starts or ends at `at`: a non-letter there, or a camelCase step (`passportNo`)."""
    if at <= 0 or at >= len(text):
        return True
    return not (low[at - 1].isalpha() and low[at].isalpha()) or (text[at - 1].islower() and text[at].isupper())


def passport_shaped(token: str) -> bool:
    """Whether a token (separators allowed) has the shape of some country's passport number."""
    compact = re.sub(r"[ \-]", "", token)
    if not compact.isupper() and not compact.isdigit():
        return False
    if compact.isdigit():
        return 8 <= len(compact) <= 10  # US and UK: nine digits; a six-digit number is more often a count
    if SHAPES.fullmatch(compact):
        return True
    return 6 <= len(compact) <= 10 and sum(ch.isdigit() for ch in compact) >= 5


def find_passports(text: str) -> Iterator[Span]:
    """Passport-shaped values near a passport cue (see the module docstring)."""
    low = _folded(text)
    if not any(w in low for w in ("pass", "pasap", "paspo", "document", "ppt", "reisdoc", "reisedok")):
        return
    for cue in CUE.finditer(low):
        if not _word_edge(text, low, cue.start()):
            continue
        glued = GLUED.match(low, cue.end())
        if not _word_edge(text, low, cue.end()) and glued is None:
            continue
        if cue.group() == "pass" and not PASS_ALONE.match(low, cue.start()):
            continue
        if cue.group() == "ppt" and not re.match(r"ppt[ _.\-:#]*(?:no|nr|n[º°o]|number|#)", low[cue.start() :]):
            continue
        after = _after(text, glued.end() if glued else cue.end())
        if after is not None:
            yield span_at(text, after[0], after[1], "ID_NUMBER", score=0.96)
            continue
        before = _before(text, cue.start())
        if before is not None:
            yield span_at(text, before[0], before[1], "ID_NUMBER", score=0.96)


def _after(text: str, at: int) -> tuple[int, int] | None:
    """The first ID-like token after the cue, if it is passport-shaped."""
    window = text[at : at + MAX_AFTER]
    window = re.split(r"\n[ \t]*\n", window, maxsplit=1)[0]
    low = _folded(window)
    for m in TOKEN.finditer(window):
        if OTHER_FIELD.search(low, 0, m.start()) or SENTENCE_END.search(window, 0, m.start()):
            return None
        token = m.group()
        if sum(ch.isalnum() for ch in token) < 5 and not token.isdigit():
            continue
        if NOT_A_VALUE.fullmatch(token) and not passport_shaped(token):
            continue  # a year, a day, a small number: "expires in 2030", "valid for 10 years"
        if DATE_OR_TIME.match(window, m.start()):
            continue
        if passport_shaped(token):
            return at + m.start(), at + m.end()
        return None
    return None


def _before(text: str, at: int) -> tuple[int, int] | None:
    """A passport-shaped token at most two words before the cue, on the same line."""
    line = text[max(text.rfind("\n", 0, at) + 1, at - 64) : at]
    m = BEFORE.search(line)
    if m is None:
        return None
    token = m.group(1).strip()
    start = at - len(line) + m.start(1)
    if not passport_shaped(token) or not any(ch.isdigit() for ch in token):
        return None
    return start, start + len(token)
