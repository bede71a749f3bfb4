"""Names that are not the user's personal data: the people an exam question, a word problem or a code example
is about.

A benchmark question or a pasted task names people ("Mr. Robles buys 315 bananas", "Bertrand Russell,
British philosopher, 1946", `words_string("Hi, my name is John")`): masking them costs the answer and
protects nobody. `drop_public_names(spans, text)` removes PERSON spans (and the NER places and organisations
that only they vouched for, corroborate.py) from such a text, and only when the
text holds no other personal finding (a phone, an e-mail, an ID, an address, a secret: then the names may
well be the user's, and stay). A text is such a task when it is

- an exam question: three or more answer-option lines (`A. ...`, `(b) ...`), or
- a word problem: it ends with a question, holds numbers, and is told in the third person (no "I", "me",
  "we", "my", ... in any of the seven languages: a request about the writer's own life is not an exercise),

and a name in it is dropped unless a personal cue stands right before it in its sentence: a possessive
("my colleague X", "mi hermana X", "mon fils X"), a self-introduction ("my name is", "I'm", "je
m'appelle"), a greeting or a form label ("Dear X", "Name: X"). In a word problem only a lone name is
dropped ("Janet", "Mr. Robles"): a full name ("Tom Baker borrowed 200 euros ...") may be a real person's
and stays masked; privacy errs closed. In source code, a name inside a string
literal of an example or a test (`f("...") == ...`, `>>> f("...")`, `assert ...`) is test data and is
dropped whatever the cue. bench/results/privacy_world.md reports what the rule costs in recall and saves in
false positives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tandemlm.privacy.corroborate import corroborated
from tandemlm.privacy.spans import Span

OPTION_LINE = re.compile(r"^[ \t]*\(?[A-Ea-e][.)][ \t]+\S", re.MULTILINE)
QUESTION_END = re.compile(r"\?[\s\"'”’)\]]*$")
PERSONAL_CUE = re.compile(
    r"(?i)(?:\b(?:my|our|your|mi|mis|tu|nuestr[oa]s?|mon|ma|mes|notre|nos|ton|ta|mein(?:e[mnrs]?)?|unser(?:e[mnrs]?)?"
    r"|dein(?:e[mnrs]?)?|mio|mia|miei|mie|nostr[oaie]|tuo|tua|mijn|onze|ons|jouw|je|meu|minha|meus|minhas|noss[oa]s?"
    r"|teu|tua)\b[^.!?\n\"“]{0,40}"
    r"|\b(?:name is|name's|call me|i'm|i’m|i am|me llamo|soy|je m'appelle|je suis|ich heiße|ich bin|mi chiamo|sono"
    r"|ik heet|ik ben|chamo-me|me chamo|sou|dear|hi|hello|hey|hola|bonjour|hallo|ciao|hoi|olá|querid[oa]|cher|chère"
    r"|liebe|lieber|caro|cara|beste|prezad[oa]|estimad[oa])[ \t,]*"
    r"|\b(?:name|nombre|nom|nome|naam|vorname|nachname|apellidos?|cognome|achternaam|sobrenome)[ \t]*:[ \t]*)$"
)
# the writer speaking of themselves: a text with these is not a third-person exercise (English "I" is case-sensitive)
FIRST_PERSON = re.compile(
    r"\bI\b|(?i:\b(?:me|my|mine|myself|we|us|our|ours|yo|mis?|nosotros|nuestr[oa]s?|je|j'|moi|mon|mes|nous|notre"
    r"|ich|mich|mir|mein(?:e[mnrs]?)?|wir|uns|unser(?:e[mnrs]?)?|io|mio|mia|miei|noi|nostr[oaie]|ik|mij|mijn|wij"
    r"|ons|onze|eu|meu|minha|meus|minhas|nós|noss[oa]s?)\b)"
)
TITLE = re.compile(
    r"(?i)^(?:mr|mrs|ms|miss|mx|dr|prof|sir|madam|sr|sra|srta|m|mme|mlle|herr|frau|sig|sig\.ra|dhr|mevr)\.?$"
)
CODE = re.compile(r"^[ \t]*(?:def |class |function |>>> |import |from \w+ import )", re.MULTILINE)
EXAMPLE_LINE = re.compile(r"==|^[ \t]*(?:>>>|assert\b|print\()")


def exam_question(text: str) -> bool:
    """Whether the text has three or more answer-option lines."""
    return len(OPTION_LINE.findall(text)) >= 3


def word_problem(text: str) -> bool:
    """Whether the text is a third-person exercise: it ends with a question and holds numbers."""
    asked = bool(QUESTION_END.search(text)) and any(ch.isdigit() for ch in text)
    return asked and not FIRST_PERSON.search(text)


def public_task(text: str) -> bool:
    """Whether the text reads as an exam question or a word problem (see the module docstring)."""
    return exam_question(text) or word_problem(text)


def _lone_name(span: Span) -> bool:
    """A given name or a family name alone, titles aside ("Janet", "Mr. Robles"), not a full name."""
    return len([w for w in span.text.split() if not TITLE.match(w)]) <= 1


def _in_example_literal(span: Span, text: str) -> bool:
    line_start = text.rfind("\n", 0, span.start) + 1
    line_end = text.find("\n", span.end)
    line = text[line_start : len(text) if line_end < 0 else line_end]
    before = text[line_start : span.start]
    inside = before.count('"') % 2 == 1 or before.count("'") % 2 == 1
    return inside and bool(EXAMPLE_LINE.search(line))


def drop_public_names(spans: Sequence[Span], text: str) -> list[Span]:
    """The spans, less the names of the people a task text is about (see the module docstring)."""
    spans = list(spans)
    if not any(s.entity == "PERSON" for s in spans):
        return spans
    if any(s.entity != "PERSON" and s.source == "pattern" for s in spans):
        return spans  # personal data is present: the names next to it may be the user's
    code, exam, problem = bool(CODE.search(text)), exam_question(text), word_problem(text)
    if not (code or exam or problem):
        return spans
    kept = []
    for s in spans:
        if s.entity == "PERSON":
            if code and _in_example_literal(s, text):
                continue
            sentence = re.split(r"(?<=[.!?])\s+|\n", text[max(0, s.start - 80) : s.start])[-1]
            if (exam or (problem and _lone_name(s))) and not PERSONAL_CUE.search(sentence):
                continue
        kept.append(s)
    # an organisation or place that only the dropped names vouched for goes with them
    return corroborated(kept) if len(kept) < len(spans) else kept
