"""Egress audit: which known secrets appear in what left the device (the JSONL ledger of `trace.Recorder`).

A secret matches exactly, or after normalisation: case-insensitive, with any spacing or punctuation
between its letters and digits (`4111 1111-1111 1111` matches `4111111111111111`, `JOHN  SMITH` matches
`John Smith`). Ledger texts are searched as written and with their JSON decoded (an HTTP body escapes
quotes and non-ASCII characters).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tandemlm.errors import ValidationError

SEPARATORS = r"[\s\-_.,/()+@:#*]*"
MIN_NORMALISED = 4  # shorter secrets match too much by accident; they are checked exactly only


@dataclass(frozen=True)
class Leak:
    """Secret number `secret` (0-based, in the secrets file's order) found in ledger record `line` (1-based)."""

    secret: int
    line: int
    model: str
    match: Literal["exact", "normalised"]
    found: str

    def to_dict(self) -> dict[str, object]:
        return {"secret": self.secret, "line": self.line, "model": self.model, "match": self.match, "found": self.found}


class SecretMatcher:
    """Finds one secret in texts, exactly or normalised."""

    def __init__(self, secret: str) -> None:
        if not secret.strip():
            raise ValidationError("a secret must not be empty")
        self.secret = secret
        chars = re.sub(r"[^0-9A-Za-z\u00c0-\uffff]", "", secret)
        self.normalised: re.Pattern[str] | None = None
        if len(chars) >= MIN_NORMALISED:
            body = SEPARATORS.join(re.escape(c) for c in chars)
            self.normalised = re.compile(rf"(?<![0-9A-Za-z]){body}(?![0-9A-Za-z])", re.IGNORECASE)

    def search(self, text: str) -> tuple[Literal["exact", "normalised"], str] | None:
        if self.secret in text:
            return "exact", self.secret
        if self.normalised is not None and (m := self.normalised.search(text)):
            return "normalised", m.group()
        return None


def read_secrets(path: str | Path) -> list[str]:
    """One secret per line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ValidationError(f"cannot read secrets file {path}: {err.strerror or err}") from err
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def read_ledger(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each JSONL record of an egress ledger."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ValidationError(f"cannot read ledger {path}: {err.strerror or err}") from err
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValidationError(f"{path}:{n}: not a JSON ledger record: {err}") from err
        yield n, record if isinstance(record, dict) else {"text": str(record)}


def views(text: str) -> list[str]:
    """The text as written, and the strings inside it when it is JSON (decoded escapes)."""
    out = [text]
    try:
        decoded = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return out
    out.append("\n".join(_strings(decoded)))
    return out


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def find_leaks(records: Iterable[tuple[int, str, str]], secrets: list[str]) -> list[Leak]:
    """Leaks in (line, model, text) records: the first match of each secret in each record."""
    matchers = [SecretMatcher(s) for s in secrets]
    leaks = []
    for line, model, text in records:
        texts = views(text)
        for i, matcher in enumerate(matchers):
            hit = next((h for t in texts if (h := matcher.search(t)) is not None), None)
            if hit is not None:
                leaks.append(Leak(i, line, model, hit[0], hit[1]))
    return leaks


def audit_ledger(path: str | Path, secrets: list[str]) -> list[Leak]:
    """Every (secret, record) pair where the secret left the device."""
    records = ((n, str(r.get("model", "?")), str(r.get("text") or "")) for n, r in read_ledger(path))
    return find_leaks(records, secrets)


def redact(secret: str) -> str:
    """Enough of a secret to recognise it in a report without printing it whole."""
    return secret[:2] + "*" * max(len(secret) - 4, 1) + secret[-2:] if len(secret) > 6 else "*" * len(secret)
