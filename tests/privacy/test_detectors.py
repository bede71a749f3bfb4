"""The SLM detector (scripted and real), the registry, and Presidio with spaCy's small model (real)."""

from __future__ import annotations

import pytest

from tandemlm import ScriptedModel
from tandemlm.errors import ValidationError
from tandemlm.privacy import DETECTORS, PresidioDetector, SlmDetector, build_detectors

TEXT = "Ask Margit Kovacs at Northwind about the vault code tango-42-zulu; she lives in Lisbon."


def test_slm_detector_keeps_only_values_that_occur_in_the_text() -> None:
    reply = "PERSON: Margit Kovacs\nSECRET: tango-42-zulu\nPERSON: John Doe\nNONE\n- LOCATION: Lisbon\nnonsense"
    edge = ScriptedModel(reply, name="edge")
    spans = SlmDetector(edge).detect(TEXT)
    assert [(s.entity, s.text, s.source) for s in spans] == [
        ("PERSON", "Margit Kovacs", "slm"), ("SECRET", "tango-42-zulu", "slm"), ("LOCATION", "Lisbon", "slm"),
    ]  # fmt: skip
    assert TEXT in edge.requests[0].messages[0].content and edge.requests[0].params.max_tokens == 128


def test_registry_and_build() -> None:
    assert set(DETECTORS) == {"patterns", "regex", "presidio", "slm"}
    with pytest.raises(ValidationError, match="unknown PII detector"):
        build_detectors(["spacy"])
    with pytest.raises(ValidationError, match="needs an edge model"):
        build_detectors(["slm"])
    assert [s.entity for s in build_detectors(["regex"]).detect("a@b.io")] == ["EMAIL"]


IBAN = "DE89370400440532013000"
TEXT_WITH_IBAN = f"My name is John Smith, I work for Microsoft and live in Berlin. My IBAN is {IBAN}."


@pytest.mark.slow
def test_presidio_finds_names_places_organisations() -> None:
    detector = PresidioDetector()
    spans = detector.detect(TEXT_WITH_IBAN)
    found = {(s.entity, s.text) for s in spans}
    # alone, NER has no direct finding beside the full name, so the place and the employer are not kept
    assert ("PERSON", "John Smith") in found and ("LOCATION", "Berlin") not in found
    assert all(s.source == "presidio" for s in spans) and ("ORGANIZATION", "IBAN") not in found
    assert detector.detect("What is 2 + 3?") == []
    # with the patterns, the IBAN vouches for them: they describe the person it belongs to
    both = {(s.entity, s.text) for s in build_detectors(["patterns", "presidio"]).detect(TEXT_WITH_IBAN)}
    assert {("PERSON", "John Smith"), ("LOCATION", "Berlin"), ("ORGANIZATION", "Microsoft"), ("IBAN", IBAN)} <= both


@pytest.mark.slow
def test_presidio_and_patterns_together_mask_a_whole_sentence() -> None:
    both = build_detectors(["patterns", "presidio"])
    text = "Please have the manager call me at +1 212-555-0143, I'd like to join accounts with Maria Gonzalez."
    assert [(s.entity, s.text) for s in both.detect(text)] == [
        ("PHONE", "+1 212-555-0143"),
        ("PERSON", "Maria Gonzalez"),
    ]


@pytest.mark.slow
def test_slm_detector_with_a_real_small_model(smollm2: object) -> None:
    spans = SlmDetector(smollm2, max_tokens=40).detect(TEXT)  # type: ignore[arg-type]
    assert all(TEXT[s.start : s.end] == s.text for s in spans)  # whatever it lists, spans are exact
