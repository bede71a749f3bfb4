"""`PiiGatekeeper` with scripted models: what the cloud receives, what the user gets back, and the trace."""

from __future__ import annotations

import json

import httpx
import pytest

from tandemlm import GenerationParams, Message, Recorder, Request, ScriptedModel
from tandemlm.collab.base import Strategy, leaves
from tandemlm.collab.cascade import Cascade
from tandemlm.collab.fallback import Fallback
from tandemlm.errors import PrivacyBlockedError, PrivacyError, ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.models.openai import OpenAIModel
from tandemlm.privacy import Detector, PatternDetector, PiiGatekeeper, PrivacyPolicy, SlmDetector, Span
from tandemlm.privacy.spans import span_at

SECRETS = ("ann.lee@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", "sk-proj-abcdefghijklmnop1234567890")
PROMPT = f"I am Ann. Mail {SECRETS[0]}, card {SECRETS[1]}, phone {SECRETS[2]}, key {SECRETS[3]}. What is 2 + 3?"


def echo(request: Request) -> str:
    return "You wrote: " + request.messages[-1].content


def cloud(replies: object = echo) -> ScriptedModel:
    return ScriptedModel(replies, name="cloud", location="cloud")  # type: ignore[arg-type]


def sent(model: ScriptedModel) -> str:
    return "\n".join(m.content for r in model.requests for m in r.messages)


class Names(Detector):
    """A stand-in for NER: the capitalised words after "I am"."""

    def detect(self, text: str) -> list[Span]:
        at = text.find("I am ")
        if at < 0:
            return []
        end = at + 5
        while end < len(text) and text[end].isalpha():
            end += 1
        return [span_at(text, at + 5, end, "PERSON", "presidio", 0.85)] if end > at + 5 else []


class Broken(Detector):
    def detect(self, text: str) -> list[Span]:
        raise RuntimeError("spaCy model failed to load")


def gatekeeper(inner: ScriptedModel, **options: object) -> PiiGatekeeper:
    options.setdefault("detectors", [PatternDetector(), Names()])
    return PiiGatekeeper(inner, name="private", **options)  # type: ignore[arg-type]


def test_cloud_sees_placeholders_and_the_user_gets_the_originals_back() -> None:
    c = cloud()
    gk = gatekeeper(c)
    with Recorder() as rec:
        answer = gk.generate(PROMPT)
    outgoing = sent(c)
    assert not any(s in outgoing for s in (*SECRETS, "Ann"))
    assert outgoing == (
        "I am <PERSON_1>. Mail <EMAIL_1>, card <CREDIT_CARD_1>, phone <PHONE_1>, key <SECRET_1>. What is 2 + 3?"
    )
    assert answer.text == "You wrote: " + PROMPT
    assert answer.decision == (
        "pseudonymize: pseudonymized 1 CREDIT_CARD, 1 EMAIL, 1 PERSON, 1 PHONE, 1 SECRET; sent to cloud"
    )
    assert not any(s in e for e in answer.egress for s in SECRETS)
    assert [(e.model, e.role) for e in rec.events] == [("cloud", "cloud"), ("private", "model")]
    assert rec.events[-1].decision == answer.decision


def test_stream_restores_placeholders_split_over_one_character_chunks() -> None:
    c = cloud()
    chunks = list(gatekeeper(c).stream(PROMPT))
    pieces = [ch.text for ch in chunks]
    assert "".join(pieces) == "You wrote: " + PROMPT == chunks[-1].completion.text  # type: ignore[union-attr]
    assert all("<" not in p for p in pieces)  # the scripted cloud streams one character per chunk
    assert not any(s in sent(c) for s in SECRETS)
    assert chunks[-1].completion is not None and "pseudonymized" in (chunks[-1].completion.decision or "")


def test_no_pii_goes_out_unchanged() -> None:
    c = cloud()
    answer = gatekeeper(c).generate("What is 2 + 3?")
    assert sent(c) == "What is 2 + 3?" and answer.decision == "pseudonymize: no PII found; sent to cloud"


def test_turns_of_one_conversation_keep_their_placeholders() -> None:
    c = cloud(lambda r: "Noted, <PERSON_1>.")
    gk = gatekeeper(c)
    first = [Message("user", "I am Zed, mail zed@example.com")]
    a1 = gk.generate(Request(tuple(first)))
    assert a1.text == "Noted, Zed."
    # turn 2: "Zed" is no longer after "I am" in the new message, so only the conversation's mapping masks it
    second = (*first, Message("assistant", a1.text), Message("user", "Zed again; and bob@example.com"))
    gk.generate(Request(second))
    assert [m.content for m in c.requests[1].messages] == [
        "I am <PERSON_1>, mail <EMAIL_1>", "Noted, <PERSON_1>.", "<PERSON_1> again; and <EMAIL_2>",
    ]  # fmt: skip
    assert "Zed" not in sent(c)
    other = gk.generate(Request((Message("user", "Zed? bob@example.com"),)))  # another conversation: fresh numbering
    assert c.requests[2].messages[0].content == "Zed? <EMAIL_1>" and other.text == "Noted, <PERSON_1>."


def test_surrogates_are_consistent_across_turns_and_restored() -> None:
    c = cloud(lambda r: "Hello " + r.messages[-1].content.split()[-1])
    gk = gatekeeper(c, surrogates=True)
    first = (Message("user", "mail ann@example.com"),)
    a1 = gk.generate(Request(first))
    assert c.requests[0].messages[0].content == "mail user1@example.org" and a1.text == "Hello ann@example.com"
    gk.generate(Request((*first, Message("assistant", a1.text), Message("user", "cc bob@example.com"))))
    assert [m.content for m in c.requests[1].messages] == ["mail user1@example.org", "Hello user1@example.org",
                                                          "cc user2@example.org"]  # fmt: skip


@pytest.mark.parametrize("streamed", [False, True])
def test_a_failing_detector_fails_closed_and_sends_nothing(streamed: bool) -> None:
    c = cloud()
    gk = gatekeeper(c, detectors=[PatternDetector(), Broken()])
    with Recorder() as rec, pytest.raises(PrivacyError, match="nothing was sent to the cloud"):
        gk.generate(PROMPT) if not streamed else list(gk.stream(PROMPT))
    assert c.requests == []
    (event,) = rec.events
    assert event.model == "private" and "RuntimeError: spaCy model failed to load" in (event.error or "")


def test_fail_local_lets_the_edge_answer() -> None:
    c, edge = cloud(), ScriptedModel("edge answer", name="edge")
    gk = gatekeeper(c, detectors=[Broken()], edge=edge, policy=PrivacyPolicy(fail="local"))
    answer = gk.generate(PROMPT)
    assert c.requests == [] and answer.text == "edge answer" and edge.requests[0].messages[0].content == PROMPT
    assert answer.decision is not None and "detector failed (RuntimeError" in answer.decision


def test_route_local_keeps_the_request_on_the_device() -> None:
    c, edge = cloud(), ScriptedModel("edge answer", name="edge")
    gk = gatekeeper(c, edge=edge, policy=PrivacyPolicy(entities={"CREDIT_CARD": "route_local"}))
    answer = gk.generate(PROMPT)
    assert c.requests == [] and answer.text == "edge answer" and answer.egress == ()
    assert answer.decision == "pseudonymize: route_local: 1 CREDIT_CARD stays on the device; answered on the device"
    gk.generate("mail ann@example.com")  # no card: pseudonymized to the cloud
    assert sent(c) == "mail <EMAIL_1>"
    streamed = list(gk.stream(PROMPT))
    assert "".join(ch.text for ch in streamed) == "edge answer" and len(c.requests) == 1


def test_block_refuses_with_a_clear_message_and_no_call() -> None:
    c, edge = cloud(), ScriptedModel("x", name="edge")
    gk = gatekeeper(c, edge=edge, policy=PrivacyPolicy(entities={"SECRET": "block"}))
    with pytest.raises(PrivacyBlockedError, match=r"blocks requests holding 1 SECRET; nothing was sent") as err:
        gk.generate(PROMPT)
    assert SECRETS[3] not in str(err.value) and c.requests == [] and edge.requests == []


def test_allow_sends_those_types_as_written() -> None:
    c = cloud()
    gatekeeper(c, policy=PrivacyPolicy(entities={"PHONE": "allow", "PERSON": "allow"})).generate(PROMPT)
    assert SECRETS[2] in sent(c) and "Ann" in sent(c) and SECRETS[0] not in sent(c)


def test_modes_that_need_the_edge_say_so() -> None:
    with pytest.raises(ValueError, match="needs an edge model"):
        PiiGatekeeper(cloud(), mode="guardian")
    with pytest.raises(ValueError, match="needs an edge model"):
        PiiGatekeeper(cloud(), policy=PrivacyPolicy(default="route_local"))


class Once(Detector):
    """Finds "Zed" on its first call only, like a sampled SLM detector that misses it the next time."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, text: str) -> list[Span]:
        self.calls += 1
        at = text.find("Zed")
        return [span_at(text, at, at + 3, "PERSON", "slm", 0.5)] if self.calls == 1 and at >= 0 else []


def test_the_conversation_mapping_masks_what_a_later_detection_misses() -> None:
    c = cloud(lambda r: "Noted.")
    gk = gatekeeper(c, detectors=Once())
    first = (Message("user", "I am Zed"),)
    a1 = gk.generate(Request(first))
    gk.generate(Request((*first, Message("assistant", a1.text), Message("user", "Zed again"))))
    assert [m.content for m in c.requests[1].messages] == ["I am <PERSON_1>", "Noted.", "<PERSON_1> again"]
    gk.generate(Request((Message("user", "Zed here"),)))  # unrelated conversation: no mapping, nothing detected
    assert c.requests[2].messages[0].content == "Zed here"


# ---- the edge must be on the device, all of it --------------------------------------------------------


class Listed(Strategy):
    """A strategy of its own, built on the Strategy base: its children are what the boundary walks."""

    def __init__(self, *models: LanguageModel) -> None:
        super().__init__("listed", models)


def test_an_edge_located_in_the_cloud_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"private: edge: 'big' is located in the cloud; the gatekeeper hands"):
        gatekeeper(cloud(), edge=ScriptedModel("x", name="big", location="cloud"))
    with pytest.raises(ValidationError, match=r"SlmDetector: 'big' is located in the cloud"):
        SlmDetector(ScriptedModel("x", name="big", location="cloud"))


def test_a_strategy_as_edge_must_hold_only_edge_models() -> None:
    small, big = ScriptedModel("a", name="small"), ScriptedModel("b", name="big", location="cloud")
    cascade = Cascade(small, big, threshold=0.5, name="cascade")
    assert cascade.location == "edge"  # a strategy runs on the device even when it calls the cloud
    with pytest.raises(ValidationError, match=r"edge: 'cascade' holds 'big', which is located in the cloud"):
        gatekeeper(cloud(), edge=cascade)
    nested = Fallback(Fallback(small, ScriptedModel("c", name="other")), cascade, name="nested")
    with pytest.raises(ValidationError, match=r"'nested' holds 'big'"):
        gatekeeper(cloud(), edge=nested)
    local = Fallback(small, ScriptedModel("c", name="other"), name="local")
    assert gatekeeper(cloud(), edge=local).edge is local
    with pytest.raises(ValidationError, match=r"'listed' holds 'big'"):
        gatekeeper(cloud(), edge=Listed(small, big))
    assert sorted(m.name for m in leaves(nested)) == ["big", "other", "small"]  # engines, each once
    assert sorted(m.name for m in leaves(gatekeeper(cloud(), edge=local))) == ["cloud", "other", "small"]


# ---- stop sequences leave masked ----------------------------------------------------------------------


def test_a_stop_sequence_holding_pii_leaves_masked_and_still_stops() -> None:
    c = cloud(lambda r: "Hello <EMAIL_1> and more")
    request = Request.of("Write to ann@example.com", stop=["ann@example.com", "END"])
    answer = gatekeeper(c).generate(request)
    (out,) = c.requests
    assert out.params.stop == ("<EMAIL_1>", "END") and out.messages[0].content == "Write to <EMAIL_1>"
    assert (answer.text, answer.finish_reason) == ("Hello ", "stop")  # cut at the stand-in: the stop
    chunks = list(gatekeeper(cloud(lambda r: "Hello <EMAIL_1> and more")).stream(request))
    assert "".join(ch.text for ch in chunks) == "Hello " and chunks[-1].finish_reason == "stop"


def test_a_stop_sequence_is_masked_with_the_conversation_mapping() -> None:
    c = cloud(lambda r: "ok")
    first = (Message("user", "I am Zed, mail zed@example.com"),)
    gk = gatekeeper(c)
    gk.generate(Request(first))
    # "Zed" alone is no PII to the detectors; the conversation knows it, so the stop leaves as <PERSON_1>
    later = (*first, Message("assistant", "ok"), Message("user", "Stop at my name"))
    gk.generate(Request(later, GenerationParams(stop=("Zed:",))))
    assert c.requests[1].params.stop == ("<PERSON_1>:",)


def test_the_restored_answer_is_cut_at_the_original_stop_sequence_plain_and_streamed() -> None:
    # "@" is no PII and the masked answer holds none; the restored one does, and the user asked to stop there
    request = Request.of("Mail ann@example.com", stop=["@"])
    answer = gatekeeper(cloud(lambda r: "Sent to <EMAIL_1> now")).generate(request)
    assert (answer.text, answer.finish_reason) == ("Sent to ann", "stop")
    chunks = list(gatekeeper(cloud(lambda r: "Sent to <EMAIL_1> now")).stream(request))
    assert [ch.text for ch in chunks if ch.text] == [*"Sent to ", "ann"]
    assert chunks[-1].completion is not None and chunks[-1].completion.text == "Sent to ann"
    assert chunks[-1].finish_reason == chunks[-1].completion.finish_reason == "stop"


def test_a_stop_sequence_counts_for_the_policy() -> None:
    c, edge = cloud(), ScriptedModel("edge answer", name="edge")
    request = Request.of("What is 2 + 3?", stop=["4111 1111 1111 1111"])
    with pytest.raises(PrivacyBlockedError, match="1 CREDIT_CARD"):
        gatekeeper(c, policy=PrivacyPolicy(entities={"CREDIT_CARD": "block"})).generate(request)
    local = gatekeeper(c, edge=edge, policy=PrivacyPolicy(entities={"CREDIT_CARD": "route_local"})).generate(request)
    assert local.text == "edge answer" and c.requests == [] and edge.requests[0].params.stop == request.params.stop


def test_the_exact_bytes_sent_hold_no_pii_from_the_stop_sequences() -> None:
    bodies: list[bytes] = []

    def endpoint(http: httpx.Request) -> httpx.Response:
        bodies.append(http.content)
        message = {"role": "assistant", "content": "Dear <PERSON_1>, "}
        return httpx.Response(200, json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

    remote = OpenAIModel("gpt", base_url="https://api.example.test/v1", api_key="k", max_retries=0,
                         transport=httpx.MockTransport(endpoint))  # fmt: skip
    request = Request.of("I am Ann, 2 + 3?", stop=["Ann <ann.lee@example.com>", "+44 20 7946 0958"])
    answer = PiiGatekeeper(remote, detectors=[PatternDetector(), Names()], name="private").generate(request)
    (body,) = bodies
    sent = json.loads(body)
    assert sent["stop"] == ["<PERSON_1> <<EMAIL_1>>", "<PHONE_1>"]
    assert sent["messages"] == [{"role": "user", "content": "I am <PERSON_1>, 2 + 3?"}]
    assert answer.egress == (body.decode(),)  # the ledger holds exactly these bytes
    assert not any(v.encode() in body for v in ("Ann", "ann.lee@example.com", "+44 20 7946 0958", "7946"))
    assert answer.text == "Dear Ann, "


# ---- a mode a request cannot get is an error, not a downgrade ---------------------------------------


@pytest.mark.parametrize("mode", ["disclosure", "guardian"])
@pytest.mark.parametrize("streamed", [False, True])
def test_a_raw_completion_in_a_rewriting_mode_is_refused(mode: str, streamed: bool) -> None:
    c, edge = cloud(), ScriptedModel("rewrite", name="edge")
    gk = gatekeeper(c, edge=edge, mode=mode)
    request = Request.completion("Mail ann@example.com and")
    with pytest.raises(ValidationError, match=rf"privacy mode '{mode}' .* raw text completion .*/v1/chat/completions"):
        gk.generate(request) if not streamed else list(gk.stream(request))
    assert c.requests == [] and edge.requests == []


def test_a_raw_completion_is_pseudonymized_in_pseudonymize_mode() -> None:
    c = cloud(lambda r: "<EMAIL_1> is")
    answer = gatekeeper(c).generate(Request.completion("Mail ann@example.com and", stop=["ann@example.com."]))
    assert c.requests[0].raw and c.requests[0].messages[0].content == "Mail <EMAIL_1> and"
    assert c.requests[0].params.stop == ("<EMAIL_1>.",)
    assert answer.text == "ann@example.com is"
    assert answer.decision == "pseudonymize: pseudonymized 2 EMAIL; sent to cloud"


# ---- overlapping detections -------------------------------------------------------------------------


class Loose(Detector):
    """A stand-in for a sloppy NER: "Smith, 12 Main" as one PERSON, overlapping the pattern's e-mail."""

    def detect(self, text: str) -> list[Span]:
        at = text.find("Smith")
        return [span_at(text, at, text.find("@") + 1, "PERSON", "presidio", 0.6)] if at >= 0 else []


def test_every_character_a_detector_flagged_is_masked() -> None:
    c = cloud()
    prompt = "Write to John Smith smith.j@example.com soon"
    # Names-like NER flags "Smith smith.j@"; patterns flag "smith.j@example.com": the union is masked
    gatekeeper(c, detectors=[PatternDetector(), Loose()]).generate(prompt)
    assert sent(c) == "Write to John <EMAIL_1> soon"


def test_an_allowed_type_does_not_let_an_overlapping_finding_out() -> None:
    c = cloud()
    prompt = "Write to John Smith smith.j@example.com soon"
    policy = PrivacyPolicy(entities={"EMAIL": "allow"})
    gatekeeper(c, detectors=[PatternDetector(), Loose()], policy=policy).generate(prompt)
    assert sent(c) == "Write to John <EMAIL_1> soon"  # the merged span is also a PERSON, which is masked
