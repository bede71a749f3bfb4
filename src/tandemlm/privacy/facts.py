"""Fact preservation for the rewriting privacy modes (disclosure, guardian).

A rewrite may drop what the cloud needs to solve the task. The facts of a request are every number in its
last user message that is not personal data (quantities, amounts, dates, percentages: any run of digits not
inside a detected PII span), its question (the last sentence ending in "?", else the last sentence that
is not only PII) and its instructions: the sentences after the question that hold no PII, which say what
form the answer takes ("Solve it step by step and end with: The answer is <number>.").

A rewrite keeps a number when the same value appears in it, compared after normalisation: digit grouping
("1,000" and "1 000" are 1000), a currency sign or unit beside it, trailing zeros of a decimal ("2.50" is
2.5). Spelled-out numbers are not read (a rewrite that writes "twelve" for "12" drops 12). It keeps the
question, and each instruction, when at least `QUESTION_SHARE` of its content words (not stop words, not
PII) appear in it, compared by a light stem. The guardian's compose step keeps the expert's result when the
final number of the expert's answer appears in the composed answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tandemlm.privacy.spans import Span

#: The trace role of the event that says a request fell back (to pseudonymize, or to the expert's answer).
FALLBACK_ROLE = "privacy-fallback"
#: The trace role of the event that says a rewrite was retried.
RETRY_ROLE = "privacy-retry"
#: The share of the question's content words a rewrite must keep.
QUESTION_SHARE = 0.6

# a number: digits, optionally grouped by "," or a thin/normal space in threes, optionally a decimal part
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:(?:,|\u202f| )\d{3})+(?:\.\d+)?(?!\w)|(?<![\w,.])\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_STOP_WORDS = (
    "a an the of to in on at by for with from and or but if then than as is are was were be been being do does did "
    "has have had will would can could should shall may might must it its this that these those there their them "
    "they he she his her him i me my we our you your us what which who whom whose how many much when where why "
    "each every all any some more most less least per into out up down over under about after before not no so "
    "just also only very please let lets"
)
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class Facts:
    """What a rewrite of one request must keep: its non-personal numbers (normalised), its question's
    content words (stemmed) and its instructions' (sentences after the question with no PII); `question` is
    the question with its PII cut out ("…")."""

    numbers: tuple[str, ...]
    question: str
    question_words: tuple[str, ...]
    instructions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (sentence, its content words)

    def missing(self, rewrite: str) -> list[str]:
        """The facts `rewrite` drops, in words a prompt and a trace can show (no PII: only non-personal
        numbers, the request's own question and its PII-free instructions)."""
        kept, words = set(numbers_in(rewrite)), set(stems(rewrite))
        out = [f"the number {n}" for n in self.numbers if n not in kept]
        sentences = [("question", self.question, self.question_words)]
        sentences += [("instruction", text, stemmed) for text, stemmed in self.instructions]
        out += [f"the {kind} ({text})" for kind, text, stemmed in sentences if not _kept(stemmed, words)]
        return out

    def completed(self, rewrite: str) -> str:
        """`rewrite` with the instructions it dropped appended as written: they hold no PII (that is what makes
        them instructions), so the gatekeeper carries them itself rather than asking the edge to copy them."""
        words = set(stems(rewrite))
        dropped = [text for text, stemmed in self.instructions if not _kept(stemmed, words)]
        return "\n\n".join([rewrite.rstrip(), *dropped]) if dropped else rewrite


def _kept(stemmed: tuple[str, ...], words: set[str]) -> bool:
    """Whether at least `QUESTION_SHARE` of a sentence's content words are among `words` (none: nothing to keep)."""
    return not stemmed or sum(w in words for w in stemmed) / len(stemmed) >= QUESTION_SHARE


def normalise_number(text: str) -> str:
    """A number's value as a canonical string: no grouping, no trailing decimal zeros ("1,000.50" → "1000.5")."""
    digits = re.sub(r"[,\u202f ]", "", text)
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    digits = digits.lstrip("0") or "0"
    return "0" + digits if digits.startswith(".") else digits


def numbers_in(text: str, spans: Sequence[Span] = ()) -> list[str]:
    """The normalised numbers of `text` outside `spans`, in order, each once."""
    out: dict[str, None] = {}
    for m in _NUMBER.finditer(text):
        if any(s.start < m.end() and m.start() < s.end for s in spans):
            continue
        out[normalise_number(m.group())] = None
    return list(out)


def stems(text: str) -> list[str]:
    """Content words of `text`, lower-cased and lightly stemmed (plural and -ing/-ed endings)."""
    out = []
    for word in _WORD.findall(text.lower()):
        word = word.strip("'-")
        if len(word) < 3 or word in _STOP:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        out.append(word)
    return out


def question_of(text: str, spans: Sequence[Span] = ()) -> str:
    """The request's question: its last sentence ending in "?", else its last sentence with a content word
    outside the PII spans; "" when there is none."""
    sentences = [(m.start(), m.end(), m.group().strip()) for m in _SENTENCE.finditer(text) if m.group().strip()]
    asked = [s for s in sentences if s[2].endswith("?")]
    for start, end, sentence in reversed(asked or sentences):
        if stems(_without(text, start, end, spans)):
            return sentence
    return ""


def _without(text: str, start: int, end: int, spans: Sequence[Span], blank: str = " ") -> str:
    """text[start:end] with each PII span in it replaced by `blank`."""
    out, last = [], start
    for s in sorted(spans, key=lambda s: s.start):
        if s.end <= last or s.start >= end:
            continue
        out += [text[last : max(s.start, last)], blank]
        last = min(s.end, end)
    return "".join([*out, text[last:end]])


def facts_of(text: str, spans: Sequence[Span]) -> Facts:
    """The facts of a request's task text whose PII is `spans`."""
    question = question_of(text, spans)
    if not question:
        return Facts(tuple(numbers_in(text, spans)), "", ())
    start = text.rfind(question)
    end = start + len(question)
    words = stems(_without(text, start, end, spans))
    shown = _without(text, start, end, spans, "…")  # the question without its PII
    instructions = tuple(
        (m.group().strip(), tuple(dict.fromkeys(stems(m.group()))))
        for m in _SENTENCE.finditer(text, end)
        if stems(m.group()) and not any(s.start < m.end() and m.start() < s.end for s in spans)
    )
    return Facts(tuple(numbers_in(text, spans)), shown, tuple(dict.fromkeys(words)), instructions)


def final_number(text: str) -> str | None:
    """The last number of a text, normalised, or None."""
    found = [normalise_number(m.group()) for m in _NUMBER.finditer(text)]
    return found[-1] if found else None
