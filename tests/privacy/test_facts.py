"""Rewrites that keep the task (privacy/facts.py): the non-personal numbers and the question must reach the
cloud; a rewrite that drops them is retried once, then the request falls back to pseudonymize, masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandemlm import Recorder, Request, ScriptedModel
from tandemlm.privacy import PatternDetector, PiiGatekeeper
from tandemlm.privacy.facts import FALLBACK_ROLE, RETRY_ROLE, facts_of, final_number, normalise_number, numbers_in
from tandemlm.privacy.gatekeeper import _count
from tandemlm.types import Completion

EMAIL, PHONE, CARD = "ann.lee@example.com", "+44 20 7946 0958", "4111 1111 1111 1111"
PROMPT = (
    f"Hi, I'm Ann Lee ({EMAIL}, phone {PHONE}). I'll pay with card {CARD}. Janet has 1,200 ducks and sells "
    f"16 eggs at $2.50 each. How much does she make per day? Please send the result to {EMAIL}."
)
GOOD = "Janet has 1200 ducks and sells 16 eggs at $2.5 each. How much does she make per day?"
DROPS = "Janet sells eggs at $2.50 each. How much does she make per day?"  # 1,200 and 16 are gone
NO_QUESTION = "Janet: 1,200 ducks, 16 eggs, $2.50."
SECRETS = (EMAIL, PHONE, CARD, "7946 0958", "4111")


def gatekeeper(edge: ScriptedModel, cloud: ScriptedModel, mode: str) -> PiiGatekeeper:
    return PiiGatekeeper(cloud, edge=edge, detectors=PatternDetector(), mode=mode)  # type: ignore[arg-type]


def cloud(reply: str = "She makes $40 a day, 40.") -> ScriptedModel:
    return ScriptedModel(reply, name="cloud", location="cloud")


def roles(answer: Completion) -> list[str]:
    return [e.role for e in answer.trace]


# ---- the facts of a request -----------------------------------------------------------------------


def test_the_numbers_that_are_pii_are_not_facts_and_grouping_is_normalised() -> None:
    spans = PatternDetector().detect(PROMPT)
    facts = facts_of(PROMPT, spans)
    assert facts.numbers == ("1200", "16", "2.5")  # not the phone's 20 / 7946 / 0958, nor the card's digits
    assert facts.question == "How much does she make per day?"
    assert facts.missing(GOOD) == []
    assert facts.missing(DROPS) == ["the number 1200", "the number 16"]
    assert facts.missing(NO_QUESTION) == ["the question (How much does she make per day?)"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("1,000", "1000"), ("1 000", "1000"), ("2.50", "2.5"), ("3.0", "3"), ("007", "7"), ("0.75", "0.75")],
)
def test_normalise_number(text: str, value: str) -> None:
    assert normalise_number(text) == value
    assert numbers_in(f"costs ${text} each") == [value]


def test_the_question_is_the_last_question_else_the_last_sentence_with_words_outside_pii() -> None:
    text = f"Is it late? Ann pays 3 for 4 apples. How much is one apple? Mail {EMAIL}."
    assert facts_of(text, PatternDetector().detect(text)).question == "How much is one apple?"
    text = f"Ann pays 3 for 4 apples. Work out the price of one. Mail {EMAIL}"
    spans = PatternDetector().detect(text)
    assert facts_of(text, spans).question == "Mail …"  # "Mail" is a content word; the e-mail itself is cut out
    assert facts_of("3 + 4", []).question == ""  # no word to keep: only its numbers are facts
    assert facts_of("3 + 4", []).numbers == ("3", "4")


def test_the_pii_free_sentences_after_the_question_are_instructions_a_rewrite_keeps() -> None:
    instruction = "Solve it briefly and end with: The answer is <number>."
    text = f"Ann pays 3 for 4 apples. How much is one apple?\n\n{instruction} Mail {EMAIL}."
    facts = facts_of(text, PatternDetector().detect(text))
    assert [sentence for sentence, _ in facts.instructions] == [instruction]
    kept = "Ann pays 3 for 4 apples. How much is one apple? Solve it briefly; end with: The answer is <number>."
    assert facts.missing(kept) == []  # the mail sentence holds PII: it may go
    dropped = "Ann pays 3 for 4 apples. How much is one apple?"
    assert facts.missing(dropped) == [f"the instruction ({instruction})"]


def test_final_number() -> None:
    assert final_number("5 × 8 = 40, so the answer is 1,040.") == "1040"
    assert final_number("no numbers") is None


# ---- disclosure -----------------------------------------------------------------------------------


def test_a_rewrite_that_keeps_the_facts_is_sent_at_once() -> None:
    edge, c = ScriptedModel(GOOD, name="edge"), cloud()
    answer = gatekeeper(edge, c, "disclosure").generate(PROMPT)
    assert [m.content for m in c.requests[0].messages] == [GOOD]
    assert len(edge.requests) == 1 and RETRY_ROLE not in roles(answer) and FALLBACK_ROLE not in roles(answer)
    assert answer.decision is not None and "fell back" not in answer.decision


def test_the_instructions_a_rewrite_dropped_are_appended_by_the_gatekeeper_not_asked_for_again() -> None:
    instruction = "Solve it step by step and end with: The answer is <number>."
    prompt = f"{PROMPT}\n\n{instruction}"
    assert facts_of(prompt, PatternDetector().detect(prompt)).completed(GOOD) == f"{GOOD}\n\n{instruction}"
    edge, c = ScriptedModel(GOOD, name="edge"), cloud()
    answer = gatekeeper(edge, c, "disclosure").generate(prompt)
    assert [m.content for m in c.requests[0].messages] == [f"{GOOD}\n\n{instruction}"]
    assert len(edge.requests) == 1 and RETRY_ROLE not in roles(answer) and FALLBACK_ROLE not in roles(answer)
    kept = f"{GOOD} {instruction}"  # kept by the edge: nothing is appended
    assert facts_of(prompt, PatternDetector().detect(prompt)).completed(kept) == kept


def test_a_rewrite_that_drops_a_number_is_retried_naming_what_it_dropped() -> None:
    edge, c = ScriptedModel([DROPS, GOOD], name="edge"), cloud()
    answer = gatekeeper(edge, c, "disclosure").generate(PROMPT)
    retry = edge.requests[1].messages[0].content
    assert "left out: the number 1200; the number 16." in retry
    assert "left out" not in edge.requests[0].messages[0].content
    assert [m.content for m in c.requests[0].messages] == [GOOD]
    assert roles(answer) == ["disclosure", RETRY_ROLE, "disclosure", "cloud", "model"]
    retried = next(e for e in answer.trace if e.role == RETRY_ROLE)
    assert retried.decision == "disclosure: the rewrite dropped 2 numbers; asked again" and retried.egress is None


@pytest.mark.parametrize("streamed", [False, True])
def test_a_rewrite_that_drops_facts_twice_falls_back_to_pseudonymize(streamed: bool) -> None:
    edge, c = ScriptedModel([DROPS, NO_QUESTION], name="edge"), cloud("Send $40 to <EMAIL_1>.")
    gk = gatekeeper(edge, c, "disclosure")
    if streamed:
        chunks = list(gk.stream(PROMPT))
        text, answer = "".join(ch.text for ch in chunks), chunks[-1].completion
        assert answer is not None
    else:
        answer = gk.generate(PROMPT)
        text = answer.text
    sent = c.requests[0].messages[0].content
    assert sent.startswith("Hi, I'm <PERSON_1> (<EMAIL_1>, phone <PHONE_1>). I'll pay with card <CREDIT_CARD_1>.")
    assert "1,200 ducks" in sent and "How much does she make per day?" in sent
    assert text == f"Send $40 to {EMAIL}."
    fallback = [e for e in answer.trace if e.role == FALLBACK_ROLE]
    assert [e.decision for e in fallback] == [
        "disclosure: fell back to pseudonymize: the rewrite dropped the question after a retry"
    ]
    assert answer.decision is not None and answer.decision.endswith(
        "sent to cloud; fell back to pseudonymize: the rewrite dropped the question after a retry"
    )


def test_a_number_the_rescreen_masks_counts_as_dropped() -> None:
    """The check reads what is sent: a rewrite that kept a number only inside a value the detectors mask (the
    card) did not keep it."""
    edge = ScriptedModel([f"{GOOD} Card {CARD}.", f"{GOOD} Card {CARD}."], name="edge")
    c = cloud()
    answer = gatekeeper(edge, c, "disclosure").generate(PROMPT)
    assert c.requests[0].messages[0].content == f"{GOOD} Card <CREDIT_CARD_1>."
    assert FALLBACK_ROLE not in roles(answer)


# ---- guardian -------------------------------------------------------------------------------------


def test_guardian_falls_back_to_pseudonymize_without_a_compose_step() -> None:
    edge, c = ScriptedModel(["How is a daily income computed?"] * 2, name="edge"), cloud("$40, sent to <EMAIL_1>")
    answer = gatekeeper(edge, c, "guardian").generate(PROMPT)
    assert len(edge.requests) == 2  # two abstractions, no composition
    assert "<CREDIT_CARD_1>" in c.requests[0].messages[0].content
    assert answer.text == f"$40, sent to {EMAIL}"
    assert roles(answer) == ["guardian-abstract", RETRY_ROLE, "guardian-abstract", FALLBACK_ROLE, "cloud", "model"]


@pytest.mark.parametrize("streamed", [False, True])
def test_a_composed_answer_that_drops_the_expert_result_is_retried_then_the_expert_answers(streamed: bool) -> None:
    edge = ScriptedModel([GOOD, "Dear Ann, about 38 dollars.", "Dear Ann, you earn well."], name="edge")
    c = cloud("16 eggs at $2.50 is $40 a day, sent to <EMAIL_1>.")
    gk = gatekeeper(edge, c, "guardian")
    if streamed:
        chunks = list(gk.stream(PROMPT))
        text, answer = "".join(ch.text for ch in chunks), chunks[-1].completion
        assert answer is not None
    else:
        answer = gk.generate(PROMPT)
        text = answer.text
    assert text == f"16 eggs at $2.50 is $40 a day, sent to {EMAIL}."  # the expert's answer, restored here
    assert "the expert's result, 40" in edge.requests[2].messages[-1].content
    assert roles(answer) == [
        "guardian-abstract", "cloud", "guardian-compose", RETRY_ROLE, "guardian-compose", FALLBACK_ROLE, "model"
    ]  # fmt: skip
    assert answer.decision is not None and "fell back to the expert's answer" in answer.decision


def test_a_composed_answer_that_keeps_the_result_is_the_answer() -> None:
    edge = ScriptedModel([GOOD, "Dear Ann Lee, you make $40 a day."], name="edge")
    answer = gatekeeper(edge, cloud("16 × 2.5 = 40"), "guardian").generate(PROMPT)
    assert answer.text == "Dear Ann Lee, you make $40 a day."
    assert roles(answer) == ["guardian-abstract", "cloud", "guardian-compose", "model"]


# ---- no path lets PII out -------------------------------------------------------------------------

PATHS = {
    "disclosure-first-try": ("disclosure", [f"{GOOD} Reply to {EMAIL}, tel {PHONE}."]),
    "disclosure-retry": ("disclosure", [DROPS, f"{GOOD} Card {CARD}."]),
    "disclosure-fallback": ("disclosure", [DROPS, DROPS]),
    "guardian-first-try": ("guardian", [f"{GOOD} For Ann Lee.", "Ann Lee makes $40."]),
    "guardian-fallback": ("guardian", [DROPS, f"Ann at {EMAIL}: {NO_QUESTION}"]),
    "guardian-compose-fallback": ("guardian", [GOOD, "no result", "still none"]),
}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("streamed", [False, True])
def test_the_egress_holds_no_pii_on_any_path(path: str, streamed: bool, tmp_path: Path) -> None:
    mode, replies = PATHS[path]
    edge, c = ScriptedModel(replies, name="edge"), cloud("$40 a day")
    ledger = tmp_path / "egress.jsonl"
    with Recorder(ledger=ledger):
        gk = gatekeeper(edge, c, mode)
        _ = list(gk.stream(Request.of(PROMPT))) if streamed else gk.generate(Request.of(PROMPT))
    egress = ledger.read_bytes()
    assert egress and len(c.requests) == 1
    for secret in SECRETS:
        assert secret.encode() not in egress, (path, secret)


def test_the_expert_result_is_never_a_digit_of_a_restored_value() -> None:
    """The cloud's answer ends with a placeholder that is restored to a phone: its result is still 40."""
    edge = ScriptedModel([GOOD, "Dear Ann, you make $40 a day."], name="edge")
    answer = gatekeeper(edge, cloud("$40 a day; call <PHONE_1>"), "guardian").generate(PROMPT)
    assert answer.text == "Dear Ann, you make $40 a day."
    assert f"$40 a day; call {PHONE}" in edge.requests[1].messages[-1].content


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        (["the number 3"], "1 number"),
        (["the number 3", "the number 4", "the question (q?)"], "2 numbers and the question"),
        (["the question (q?)", "the instruction (a.)", "the instruction (b.)"], "the question and 2 instructions"),
        (["the number 3", "the question (q?)", "the instruction (a.)"], "1 number, the question and 1 instruction"),
    ],
)
def test_the_trace_counts_what_a_rewrite_dropped_without_naming_it(missing: list[str], said: str) -> None:
    assert _count(missing) == said
