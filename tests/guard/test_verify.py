"""Fact verification: sentence-bounded chunks, max over chunks, the threshold, and `Verified` around a model."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from click.testing import CliRunner

from tandemlm import Request, ScriptedModel
from tandemlm.cli import main
from tandemlm.config import Runtime, parse_config
from tandemlm.errors import ValidationError
from tandemlm.guard.verify import Verified, Verifier, claims_of, grounding, sentences
from tandemlm.models.scripted import DEFAULT_VOCAB
from tandemlm.types import Message, ResponseFormat

VOCAB = (*DEFAULT_VOCAB, "yes", "no")
YES, NO = VOCAB.index("yes"), VOCAB.index("no")
PROMPT = re.compile(r"Document:\n(.*)\n\nClaim: (.*)\n\nIs the claim", re.DOTALL)


def verifier_model(p: Callable[[str, str], float], *, location: str = "edge") -> ScriptedModel:
    """A scripted verifier: P(yes) = p(chunk, claim), read back from the prompt the Verifier writes."""
    model: ScriptedModel

    def logits(tokens: Sequence[int]) -> np.ndarray:
        m = PROMPT.search(model.detokenize(tokens))
        assert m is not None
        out = np.full(len(VOCAB), -60.0)
        prob = p(m.group(1), m.group(2))
        out[YES], out[NO] = np.log(prob), np.log(1 - prob)
        return out

    model = ScriptedModel(logits=logits, vocab=VOCAB, name="verifier", location=location)  # type: ignore[arg-type]
    return model


def contains(chunk: str, claim: str) -> float:
    return 0.9 if claim in chunk else 0.1


def test_sentences_split_at_ends_and_lines_but_not_after_abbreviations_or_initials() -> None:
    text = 'Dr. Smith met J. Doe at 3 p.m. on Monday. "It rained!" she said? Yes.\nA list item\n\n  Last one'
    assert sentences(text) == [
        "Dr. Smith met J. Doe at 3 p.m. on Monday.",
        '"It rained!" she said?',
        "Yes.",
        "A list item",
        "Last one",
    ]
    assert claims_of("Sure! Paris is in France. Is it big? It has two million people.") == [
        "Paris is in France.",
        "It has two million people.",
    ]


def test_chunks_hold_whole_sentences_within_the_token_budget() -> None:
    v = Verifier(verifier_model(contains), chunk_tokens=20)  # one token per character
    doc = "Aaaa aaaa. Bbbb bbbb. Cccc cccc cccc cccc. " + "word " * 9 + "end."
    assert v.chunks(doc) == [
        "Aaaa aaaa. Bbbb bbbb.",  # 10 + 10 tokens: exactly the budget
        "Cccc cccc cccc cccc.",  # 20
        "word word word word",  # a 49-token sentence cut at word bounds, each piece <= 20
        "word word word word",
        "word end.",
    ]
    assert Verifier(verifier_model(contains), chunk_tokens=19).chunks("Aaaa aaaa. Bbbb bbbb.") == [
        "Aaaa aaaa.",
        "Bbbb bbbb.",
    ]


def test_the_claim_scores_its_best_chunk() -> None:
    v = Verifier(verifier_model(contains), chunk_tokens=20)
    doc = "The sky is blue. Grass is green. Water is wet today. Snow is cold."
    assert v.chunks(doc) == ["The sky is blue.", "Grass is green.", "Water is wet today.", "Snow is cold."]
    got = v.check(doc, "Water is wet")
    assert (got.supported, got.score, got.chunk) == (True, pytest.approx(0.9), 2)
    missing = v.check(doc, "Fire is wet")
    assert (missing.supported, missing.score) == (False, pytest.approx(0.1))
    assert missing.latency_ms > 0
    assert len(v.model.requests) == 0  # scored from logits: nothing generated


def test_supported_is_the_score_against_the_threshold() -> None:
    model = verifier_model(lambda chunk, claim: 0.6)
    assert Verifier(model, threshold=0.5).check("Any text.", "claim").supported is True
    assert Verifier(model, threshold=0.7).check("Any text.", "claim").supported is False
    assert Verifier(model, threshold=0.59).check("Any text.", "claim").supported is True
    with pytest.raises(ValidationError, match="threshold"):
        Verifier(model, threshold=1.5)
    with pytest.raises(ValidationError, match="empty"):
        Verifier(model).check("  ", "claim")


DOC = "Paris is the capital of France. It has about two million inhabitants."
GOOD = "Paris is the capital of France. It has about two million inhabitants."
BAD = "Paris is the capital of France. It has ninety million inhabitants. Thanks!"


def grounded(question: str = "Tell me about Paris.") -> Request:
    return Request((Message("system", f"Answer from the sources.\n<document>{DOC}</document>"),
                    Message("user", question)))  # fmt: skip


def test_grounding_reads_the_document_blocks_only() -> None:
    assert grounding(grounded()) == DOC
    two = Request.of("<document>A b c.</document> and <DOCUMENT>\nD e f.\n</DOCUMENT>")
    assert grounding(two) == "A b c.\n\nD e f."
    assert grounding(Request.of("Paris is the capital of France.")) is None


def test_verified_flags_the_unsupported_sentence_in_the_trace_and_the_tandem_field() -> None:
    inner = ScriptedModel(BAD, name="cloud", location="cloud")
    answer = Verified(inner, Verifier(verifier_model(contains)), name="verified").generate(grounded())
    report = answer.extensions["verification"]
    assert answer.text == BAD
    assert [(r["text"], r["supported"]) for r in report["sentences"]] == [
        ("Paris is the capital of France.", True),
        ("It has ninety million inhabitants.", False),  # "Thanks!" claims nothing: not checked
    ]
    assert report["unsupported"] == 1 and report["grounded"] is True
    assert answer.decision == "verify: 1 of 2 sentences unsupported: 'It has ninety million inhabitants.' (0.10)"
    (own,) = [e for e in answer.trace if e.model == "verified"]
    assert own.decision == answer.decision
    assert [e.role for e in answer.trace].count("verify") == 2  # one forward pass per sentence (one chunk)
    assert len(inner.requests) == 1


def test_regeneration_names_the_flagged_sentences_and_happens_once() -> None:
    inner = ScriptedModel([BAD, GOOD], name="cloud")
    answer = Verified(inner, Verifier(verifier_model(contains)), regenerate=True).generate(grounded())
    assert answer.text == GOOD and answer.extensions["verification"]["unsupported"] == 0
    assert answer.extensions["verification"]["regenerated"] is True
    assert answer.extensions["verification"]["flagged_before"] == ["It has ninety million inhabitants."]
    again = inner.requests[1].messages
    assert (again[-2].role, again[-2].content) == ("assistant", BAD)
    assert "- It has ninety million inhabitants." in again[-1].content
    assert "regenerated once" in (answer.decision or "")

    stubborn = ScriptedModel(BAD, name="cloud")
    answer = Verified(stubborn, Verifier(verifier_model(contains)), regenerate=True).generate(grounded())
    assert len(stubborn.requests) == 2 and answer.extensions["verification"]["unsupported"] == 1


def test_an_ungrounded_request_is_answered_unchecked() -> None:
    verifier = verifier_model(contains)
    answer = Verified(ScriptedModel(BAD), Verifier(verifier)).generate("Tell me about Paris.")
    assert answer.text == BAD and answer.extensions["verification"] == {
        "grounded": False,
        "sentences": [],
        "unsupported": 0,
    }
    assert "not grounded" in (answer.decision or "")
    assert not [e for e in answer.trace if e.role == "verify"]


def test_a_stream_sends_the_answer_then_the_verification_in_its_final_chunk() -> None:
    model = Verified(ScriptedModel(BAD), Verifier(verifier_model(contains)))
    chunks = list(model.stream(grounded()))
    assert "".join(c.text for c in chunks) == BAD and len(chunks) > 2
    assert all(c.completion is None for c in chunks[:-1])
    final = chunks[-1].completion
    assert final is not None and final.extensions["verification"]["unsupported"] == 1
    # with regeneration the answer is checked before any of it is sent: one piece, the second answer
    again = Verified(ScriptedModel([BAD, GOOD]), Verifier(verifier_model(contains)), regenerate=True)
    pieces = list(again.stream(grounded()))
    assert [c.text for c in pieces] == [GOOD]


def test_the_verifier_must_run_on_the_device() -> None:
    with pytest.raises(ValidationError, match="located in the cloud"):
        Verified(ScriptedModel(), Verifier(verifier_model(contains, location="cloud")))


def test_a_pipeline_verify_block_wraps_the_pipeline() -> None:
    config = parse_config(
        """
models:
  edge: {engine: scripted, replies: ""}
  cloud: {engine: scripted, replies: "x", location: cloud}
pipelines:
  grounded: {model: cloud, verify: {model: edge, threshold: 0.3, chunk_tokens: 64, regenerate: true}}
"""
    )
    model = Runtime(config).pipeline("grounded")
    assert isinstance(model, Verified) and model.regenerate
    assert (model.verifier.threshold, model.verifier.chunk_tokens) == (0.3, 64)
    with pytest.raises(Exception, match="verify.model: 'nope' is not defined"):
        parse_config(config.model_dump_json().replace('"model":"edge","threshold"', '"model":"nope","threshold"'))


@pytest.mark.slow
def test_smollm2_scores_a_contradiction_below_a_copied_sentence(smollm2: object) -> None:
    v = Verifier(smollm2)  # type: ignore[arg-type]
    doc = (
        "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
        "friends every day with four. She sells the remainder at the farmers' market daily for $2 per egg."
    )
    copy = v.check(doc, "Janet's ducks lay 16 eggs per day.")
    contradiction = v.check(doc, "Janet's ducks never lay any eggs.")
    assert copy.score > contradiction.score


@pytest.mark.slow
def test_tandem_verify_prints_the_verdict_as_json(smollm2_path: str, tmp_path: object) -> None:
    path = f"{tmp_path}/doc.txt"
    with open(path, "w", encoding="utf-8") as f:
        f.write("The Eiffel Tower is in Paris. It was finished in 1889.")
    result = CliRunner().invoke(main, ["verify", "--config", "tiny", "--document", f"@{path}", "--json",
                                       "The Eiffel Tower is in Paris."])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"supported", "score", "latency_ms"} and 0 <= out["score"] <= 1
    missing = CliRunner().invoke(main, ["verify", "--config", "tiny", "--document", "@/nonexistent", "x y z"])
    assert missing.exit_code != 0 and "cannot read the document" in missing.output


def test_verified_honours_what_its_inner_model_does_and_leaves_structured_answers_unchecked() -> None:
    inner = ScriptedModel('{"city": "Paris has ninety million inhabitants."}')
    verifier = verifier_model(contains)
    verifier.supports = frozenset()  # a verifier that honours nothing beyond text does not narrow the pipeline
    model = Verified(inner, Verifier(verifier))
    assert model.features == inner.features
    request = Request(grounded().messages, Request.of("x", response_format=ResponseFormat("json_object")).params)
    answer = model.generate(request)
    assert answer.extensions["verification"]["sentences"] == [] and not verifier.requests
