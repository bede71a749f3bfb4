"""Selective disclosure: the cloud gets only the edge model's rewrite, screened again before it leaves."""

from __future__ import annotations

from tandemlm import Request, ScriptedModel
from tandemlm.privacy import PatternDetector, PiiGatekeeper
from tandemlm.privacy.disclosure import SelectiveDisclosure

PROMPT = "I'm paying with card 4111 1111 1111 1111, my mail is ann@example.com. A pen costs $3; what do 4 pens cost?"


def test_the_cloud_gets_the_minimal_question_and_a_leaky_rewrite_is_masked() -> None:
    edge = ScriptedModel("Pens cost $3 each; what do 4 cost? Reply to ann@example.com", name="edge")
    cloud = ScriptedModel(lambda r: "12 dollars, sent to <EMAIL_1>", name="cloud", location="cloud")
    gk = PiiGatekeeper(cloud, edge=edge, detectors=PatternDetector(), mode="disclosure")
    answer = gk.generate(PROMPT)
    (sent,) = cloud.requests
    assert [m.content for m in sent.messages] == ["Pens cost $3 each; what do 4 cost? Reply to <EMAIL_1>"]
    assert PROMPT in edge.requests[0].messages[0].content  # the edge saw the original, on the device
    assert answer.text == "12 dollars, sent to ann@example.com"
    assert answer.decision is not None and answer.decision.startswith("disclosure: pseudonymized")


def test_stream_and_sampling_parameters_follow_the_original_request() -> None:
    edge = ScriptedModel("What do 4 pens at $3 cost?", name="edge")
    cloud = ScriptedModel("12", name="cloud", location="cloud")
    gk = PiiGatekeeper(cloud, edge=edge, detectors=PatternDetector(), mode="disclosure")
    chunks = list(gk.stream(Request.of(PROMPT, max_tokens=7, temperature=0.5)))
    assert "".join(c.text for c in chunks) == "12"
    assert cloud.requests[0].params.max_tokens == 7 and cloud.requests[0].params.temperature == 0.5


def test_an_empty_rewrite_falls_back_to_the_last_message_which_is_then_masked() -> None:
    rewrite = SelectiveDisclosure(ScriptedModel("", name="edge")).rewrite(Request.of("hi"))
    assert rewrite.messages[0].content == "hi"
