"""Guardian mode: the cloud sees an abstract question; the edge composes with the private data."""

from __future__ import annotations

from tandemlm import ScriptedModel
from tandemlm.privacy import PatternDetector, PiiGatekeeper

PROMPT = "Ann (ann@example.com, +44 20 7946 0958) earns $20 an hour for 5 hours. Write her a note with her pay."


def test_cloud_sees_only_the_abstract_question_and_the_edge_composes() -> None:
    abstract = "Write a note with the pay for 5 hours at $20 an hour."
    edge = ScriptedModel([abstract, "Dear Ann, your pay is $100."], name="edge")
    cloud = ScriptedModel("Multiply the rate by the hours: $100.", name="cloud", location="cloud")
    gk = PiiGatekeeper(cloud, edge=edge, detectors=PatternDetector(), mode="guardian")
    answer = gk.generate(PROMPT)
    assert [m.content for m in cloud.requests[0].messages] == [abstract]
    compose = edge.requests[1].messages[-1].content
    assert "Multiply the rate by the hours: $100." in compose and PROMPT in compose
    assert answer.text == "Dear Ann, your pay is $100."
    assert answer.decision is not None and answer.decision.startswith("guardian: pseudonymized 1 EMAIL, 1 PHONE")
    assert [e.role for e in answer.trace] == ["guardian-abstract", "cloud", "guardian-compose", "model"]


def test_guardian_streams_the_composed_answer_and_masks_a_leaky_abstraction() -> None:
    edge = ScriptedModel(["Write a pay note for ann@example.com: 5 hours at $20", "Note: $100"], name="edge")
    cloud = ScriptedModel(lambda r: "Template for <EMAIL_1>", name="cloud", location="cloud")
    gk = PiiGatekeeper(cloud, edge=edge, detectors=PatternDetector(), mode="guardian")
    chunks = list(gk.stream(PROMPT))
    assert "".join(c.text for c in chunks) == "Note: $100"
    assert cloud.requests[0].messages[0].content == "Write a pay note for <EMAIL_1>: 5 hours at $20"
    assert "Template for ann@example.com" in edge.requests[1].messages[-1].content  # restored for the edge
