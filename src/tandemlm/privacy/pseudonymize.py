"""Consistent pseudonyms for one conversation, and their exact restoration (also while streaming).

The same value always gets the same stand-in: a typed placeholder (`<PERSON_1>`, `<EMAIL_2>`) or, with
`surrogates=True`, a realistic fake of the same type (a Luhn-valid test card, an `example.org` address).
Values are compared after light normalisation per type (card and IBAN digits without spaces, e-mail case),
so `4111 1111 1111 1111` and `4111-1111-1111-1111` share one placeholder. The mapping lives only in this
object, on the edge; nothing here sends it anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from tandemlm.privacy.spans import Span

SURROGATE_NAMES = ("Avery Quinlan", "Rowan Ellery", "Sasha Delacroix", "Morgan Tiller", "Jordan Vale", "Casey Wren",
                   "Riley Ashdown", "Emerson Hale", "Parker Lindqvist", "Quinn Marlowe")  # fmt: skip
SURROGATE_PLACES = ("Fairhaven", "Oakridge", "Millbrook", "Stonebridge", "Westmere", "Brookfield")
SURROGATE_ORGS = ("Northwind Traders", "Contoso Ltd", "Fabrikam Inc", "Tailspin Toys", "Litware Group")


def normalise(entity: str, value: str) -> str:
    """The key under which two spellings of one value count as the same value."""
    if entity in ("CREDIT_CARD", "IBAN", "US_SSN", "PHONE"):
        return re.sub(r"[^0-9A-Za-z+]", "", value).upper()
    if entity == "EMAIL":
        return value.lower()
    return re.sub(r"\s+", " ", value.strip())


class Pseudonymizer:
    """Replaces detected spans with stand-ins, keeps the mapping, and restores the originals."""

    def __init__(self, *, surrogates: bool = False) -> None:
        self.surrogates = surrogates
        self.originals: dict[str, str] = {}  # stand-in → the value as first seen
        self._by_value: dict[tuple[str, str], str] = {}  # (entity, normalised value) → stand-in
        self._counts: dict[str, int] = {}
        self._pattern: re.Pattern[str] | None = None

    def copy(self) -> Pseudonymizer:
        """An independent continuation: a branch of the conversation must not renumber its parent."""
        out = Pseudonymizer(surrogates=self.surrogates)
        out.originals = dict(self.originals)
        out._by_value = dict(self._by_value)
        out._counts = dict(self._counts)
        return out

    def stand_in(self, entity: str, value: str) -> str:
        """The placeholder (or surrogate) of a value, allocating the next one of its type when new."""
        key = (entity, normalise(entity, value))
        if key not in self._by_value:
            n = self._counts[entity] = self._counts.get(entity, 0) + 1
            token = surrogate(entity, n) if self.surrogates else f"<{entity}_{n}>"
            if token in self.originals:  # surrogates are unique per type and number; this is a safety net
                token = f"<{entity}_{n}>"
            self._by_value[key] = token
            self.originals[token] = value
            self._pattern = None
        return self._by_value[key]

    def mask(self, text: str, spans: Iterable[Span]) -> str:
        """`text` with every span replaced by its stand-in (spans must not overlap)."""
        out, last = [], 0
        for span in sorted(spans, key=lambda s: s.start):
            out += [text[last : span.start], self.stand_in(span.entity, span.text)]
            last = span.end
        return "".join([*out, text[last:]])

    def mask_known(self, text: str) -> str:
        """Also replace verbatim occurrences of values already mapped (found elsewhere in the conversation)."""
        values = sorted(((v, t) for t, v in self.originals.items() if len(v.strip()) >= 3), key=lambda p: -len(p[0]))
        for value, token in values:
            text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", lambda _, t=token: t, text)  # type: ignore[misc]
        return text

    def restore(self, text: str, *, in_json: bool = False) -> str:
        """Every stand-in in `text` replaced by the original value; `in_json`: `text` is JSON, whose stand-ins
        sit in its strings, so each value goes in escaped (a quote in a name keeps the JSON valid)."""
        if not self.originals:
            return text
        if in_json:
            return self._regex().sub(lambda m: json.dumps(self.originals[m.group()], ensure_ascii=False)[1:-1], text)
        return self._regex().sub(lambda m: self.originals[m.group()], text)

    def restorer(self, *, in_json: bool = False) -> StreamRestorer:
        return StreamRestorer(self, in_json=in_json)

    def _regex(self) -> re.Pattern[str]:
        if self._pattern is None:
            tokens = sorted(self.originals, key=len, reverse=True)  # <PERSON_10> before <PERSON_1>
            self._pattern = re.compile("|".join(re.escape(t) for t in tokens))
        return self._pattern


class StreamRestorer:
    """Restores stand-ins in a streamed answer. A chunk may end inside a stand-in (`<PER` + `SON_1>`): the
    tail that could still grow into one is held back until the next chunk decides, so a partial stand-in
    is never emitted and the concatenated output equals `restore` of the whole text."""

    def __init__(self, pseudonymizer: Pseudonymizer, *, in_json: bool = False) -> None:
        self.p = pseudonymizer
        self.in_json = in_json
        self.held = ""

    def feed(self, piece: str) -> str:
        """Restored text that is safe to emit now."""
        text = self.held + piece
        keep = self._partial_tail(text)
        self.held = text[len(text) - keep :] if keep else ""
        return self.p.restore(text[: len(text) - keep], in_json=self.in_json)

    def flush(self) -> str:
        """Whatever is held at the end of the stream (restored; a partial stand-in stays as written)."""
        out, self.held = self.p.restore(self.held, in_json=self.in_json), ""
        return out

    def _partial_tail(self, text: str) -> int:
        """Length of the longest suffix of text that is a proper prefix of some stand-in."""
        best = 0
        for token in self.p.originals:
            for n in range(min(len(token) - 1, len(text)), best, -1):
                if text.endswith(token[:n]):
                    best = n
                    break
        return best


def surrogate(entity: str, n: int) -> str:
    """A realistic, clearly fake value of a type: the n-th of its kind in this conversation."""
    i = n - 1
    if entity == "PERSON":
        base = SURROGATE_NAMES[i % len(SURROGATE_NAMES)]
        return base if i < len(SURROGATE_NAMES) else f"{base} {i // len(SURROGATE_NAMES) + 1}"
    if entity == "EMAIL":
        return f"user{n}@example.org"
    if entity == "PHONE":
        return f"+1 202-555-{100 + n:04d}"
    if entity == "CREDIT_CARD":
        return _luhn_complete(f"400000000000{n:03d}")
    if entity == "IBAN":
        return _iban("GB", f"TEST{n:014d}")
    if entity == "LOCATION":
        return SURROGATE_PLACES[i % len(SURROGATE_PLACES)] + (f" {i // len(SURROGATE_PLACES) + 1}" if i >= 6 else "")
    if entity == "ORGANIZATION":
        return SURROGATE_ORGS[i % len(SURROGATE_ORGS)] + (f" {i // len(SURROGATE_ORGS) + 1}" if i >= 5 else "")
    return f"[{entity.lower()}-{n}]"


def _luhn_complete(body: str) -> str:
    from tandemlm.privacy.patterns import luhn_valid

    digits = next(body + str(d) for d in range(10) if luhn_valid(body + str(d)))
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in rearranged)) % 97
    return f"{country}{check:02d}{bban}"
