"""Precision rules for NER findings: which spans spaCy's model tags are plausible, and which need a second signal.

Presidio's small spaCy model tags many words that are not personal data: option labels ("D.", "B."),
title-case common nouns ("State", "Neighbor"), code ("False", "List", "will_it_fly([3"), acronyms ("TODO",
"INFO", "BSB"). `plausible` rejects a span by its own shape. Then `corroborated` applies a rule about the
whole text: a *quasi-identifier* found by NER alone (an organisation, a place, a nationality/religion, or a
lone one-word name) is personal data only next to something that points at a person, so it is kept only
when the same text holds a direct finding (a validated pattern, a cued name, a full name, an SLM finding).
"Vanessa bought 5 apples in Camden" then masks nothing; "Vanessa's phone is +44 20 7946 0018, she lives in
Camden" masks all three. A lone first name in a word problem is not treated as PII: that is the choice the
false-positive target is judged on (bench/results/privacy_world.md reports it both ways).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tandemlm.privacy.name_fields import wordset
from tandemlm.privacy.names import NOT_NAMES
from tandemlm.privacy.spans import Span

NEAR = 200  # characters: a template's fields sit together; a quoted passage's places are far from its byline
QUASI = frozenset(["ORGANIZATION", "LOCATION", "NRP"])
NER_SOURCES = frozenset(["presidio"])
# code, markup, digits: a name never holds these
CODE_CHARS = re.compile(r"[\d_()\[\]{}=<>;/\\|@#$%^&*+~`\"]")
SENTENCE_BREAK = re.compile(r"[a-z]{2,}\.[ \t]+\S|[!?;:]")
#: Lower-case words that belong inside a name or a place ("Lorenzo de Medici", "Stratford upon Avon").
PARTICLE_WORDS = wordset(
    "de la las los del van der den von zu di da das dos do du des le y e bin ibn al el ten ter dei della upon on of"
    " the and"
)
INITIALS = re.compile(r"(?:[A-Z]\.[ \t]*)+")
OPTION_LABEL = re.compile(r"(?:^|\n)[ \t]*\(?[A-Ja-j][.)][ \t]*$")
#: Title-case words NER tags that are not names: formatting, form labels, code literals, months, generic nouns.
NOT_ENTITIES = wordset(
    """
    False True None Null List Dict Tuple Set Str Int Float Bool Optional Any Union Callable Iterable Returns Return
    Example Examples Input Output Note Args Raises Yields TODO FIXME INFO WARN WARNING ERROR DEBUG Email Mail
    Tel Phone Mobile Fax Address Adresse Dirección Indirizzo Adres Morada Date Datum Fecha Subject Betreff Asunto
    Objet Oggetto Onderwerp Assunto Re Fwd Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec State States
    Neighbor Neighbour Company Corporation Bank Store Shop School University College City Town County Country
    Street Road Avenue Question Answer Options Option Choice Statement Mijn Mein Meine Mon Ma Mi Il La Le Das Der
    Die Het De Een Uno Una Un Une Ein Eine Hallo Bonjour Hola Ciao Hoi Olá Madam Cheers Regards Thanks
    """
)  # fmt: skip


def plausible(span: Span, text: str) -> bool:
    """Whether an NER span has the shape of a name, place or organisation (see the module docstring)."""
    value = span.text.strip()
    words = value.split()
    if not words or not any(ch.isalpha() for ch in value) or CODE_CHARS.search(value):
        return False
    if value == value.lower() or INITIALS.fullmatch(value):
        return False  # "abc", "D.", "J. R."
    if "\n" in value or SENTENCE_BREAK.search(value):
        return False  # "A. Biotin\nB. Niacin", "Movie B. Movie B", "integer n. You": lists and sentences
    if any(not (w[0].isupper() or w in PARTICLE_WORDS) for w in words):
        return False  # a lower-case word that is no particle: "integer n", "the Council of Ferrera"
    core = [w.strip(".,") for w in words if w not in PARTICLE_WORDS]
    if len(set(core)) < len(core):
        return False  # a word twice: "Movie B. Movie B"
    not_names = NOT_NAMES if span.entity == "PERSON" else frozenset()  # "Microsoft" is no name, but an employer
    if all(w.strip(".,;:'’") in NOT_ENTITIES or w.strip(".,;:'’") in not_names for w in words):
        return False  # "Return None", "Dear Sir"
    if OPTION_LABEL.search(text[max(0, span.start - 8) : span.start]) and len(words) <= 2:
        return False  # "A. Wrong": the text of a multiple-choice option
    if OPTION_LABEL.search(text[max(0, span.start - 8) : span.start] + value[:2]) and len(words) <= 3:
        return False  # "A. Wrong" at a line start: the label is inside the span
    if len(words) == 1:
        word = value.strip(".,;:'’")
        if word in NOT_ENTITIES or word in not_names or word.capitalize() in NOT_ENTITIES:
            return False
        if word.isupper() and len(word) <= 5:
            return False  # an acronym: "TODO", "BSB", "IFSC", "NIF" (a form's "JOHN" is found by names.py)
    return True


def is_ner(span: Span) -> bool:
    return span.source in NER_SOURCES


def is_quasi(span: Span) -> bool:
    """A finding that identifies nobody on its own: an NER organisation, place, group, or a one-word name."""
    if not is_ner(span):
        return False
    return span.entity in QUASI or (span.entity == "PERSON" and len(span.text.split()) == 1)


def corroborated(spans: Iterable[Span]) -> list[Span]:
    """The spans, less the quasi-identifiers that no other detector's finding is near (within `NEAR`
    characters; a span merged from a pattern's and NER's findings takes the pattern's source, so it counts).
    A full name found by NER stays on its own, with the one-word names that are part of it ("Maria Gonzalez
    ... Maria said"), but does not vouch for places and organisations: quoted history ("Lorenzo de Medici ...
    the Florentine Academy") is not a person's data."""
    spans = list(spans)
    anchors = [s for s in spans if not is_ner(s)]
    words = {w for s in spans if not is_quasi(s) for w in s.text.split()}
    return [s for s in spans if not is_quasi(s) or (s.entity == "PERSON" and s.text.strip() in words)
            or any(a.start - NEAR <= s.end and s.start <= a.end + NEAR for a in anchors)]  # fmt: skip
