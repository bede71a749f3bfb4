"""`Guarded` on scripted models and guards: exact windows, nothing unsafe released, nothing sent when blocked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandemlm import Request, Runtime, ScriptedModel
from tandemlm.config import parse_config
from tandemlm.errors import ContentFilteredError, ContextLengthError, GuardError, ValidationError
from tandemlm.guard.base import Kind, Verdict
from tandemlm.guard.guarded import Guarded
from tandemlm.guard.scripted import ScriptedGuard
from tandemlm.types import Completion

# "BOMB" at characters 8-11: it straddles window 0 [0, 10) and window 1 [6, 16) (window 10, overlap 4)
STRADDLING = "01234567BOMBcdefghijklmnop"


def streamed(model: Guarded, request: Request | str) -> tuple[list[str], Completion]:
    chunks = list(model.stream(request))
    final = chunks[-1].completion
    assert final is not None
    return [c.text for c in chunks], final


def guard_events(c: Completion, kind: str = "output") -> list[str]:
    return [e.decision or "" for e in c.trace if e.operation == "guard" and e.role == f"guard-{kind}"]


def test_a_span_straddling_two_windows_is_cut_before_any_of_it_is_released() -> None:
    guard = ScriptedGuard(["bomb"], category="S9")
    model = Guarded(ScriptedModel(STRADDLING), output=guard, window=10, overlap=4)
    pieces, final = streamed(model, "tell me")
    assert "".join(pieces) == "012345"  # window 0 passed; its last 4 characters were held back with "BO"
    assert all("B" not in p for p in pieces)
    assert final.finish_reason == "content_filter"
    assert final.text == "012345"
    assert [text for text, _, _ in guard.seen] == ["01234567BO", "67BOMBcdef"]
    assert all(kind == "output" and context == "tell me" for _, kind, context in guard.seen)
    events = guard_events(final)
    assert events == ["window 0 (0, 10): safe (score 0.000)", "window 1 (6, 16): unsafe S9 (score 1.000)"]
    assert "flagged window 1 (characters 6-16; category S9 (Indiscriminate Weapons), score 1.00)" in final.decision
    # the same answer, not streamed: the same windows, the same cut
    plain = model.generate("tell me")
    assert (plain.text, plain.finish_reason) == ("012345", "content_filter")


def test_without_overlap_the_straddling_span_gets_through() -> None:
    """Why the overlap: windows that do not overlap each see half of the span."""
    model = Guarded(ScriptedModel(STRADDLING), output=ScriptedGuard(["bomb"]), window=10, overlap=0)
    pieces, final = streamed(model, "tell me")
    assert "".join(pieces) == STRADDLING
    assert final.finish_reason == "stop"


def test_a_safe_stream_is_released_whole_window_by_window() -> None:
    text = "abcdefghij" * 5  # 50 characters
    guard = ScriptedGuard(["bomb"])
    pieces, final = streamed(Guarded(ScriptedModel(text), output=guard, window=20, overlap=5), "hi")
    assert "".join(pieces) == text and final.text == text and final.finish_reason == "stop"
    # windows of 20 advancing by 15; of each the last 5 held back, then released once the answer ended there
    assert [p for p in pieces if p] == [text[:15], text[15:30], text[30:45], text[45:]]
    assert [len(t) for t, _, _ in guard.seen] == [20, 20, 20]
    assert final.decision == "guard: output passed in 3 windows"


def test_the_tail_of_a_passed_window_is_released_without_a_second_check() -> None:
    guard = ScriptedGuard(["bomb"])
    _, final = streamed(Guarded(ScriptedModel("x" * 20), output=guard, window=20, overlap=5), "hi")
    assert final.text == "x" * 20 and len(guard.seen) == 1


def test_an_unsafe_first_window_releases_nothing_and_stops_the_inner_stream() -> None:
    inner = ScriptedModel("BOMB " + "x" * 500)
    pieces, final = streamed(Guarded(inner, output=ScriptedGuard(["bomb"]), window=10, overlap=4), "hi")
    assert "".join(pieces) == "" and final.text == "" and final.finish_reason == "content_filter"


def test_an_unsafe_last_window_keeps_the_usage_of_the_finished_answer() -> None:
    model = Guarded(ScriptedModel("0123456789BOMB"), output=ScriptedGuard(["bomb"]), window=10, overlap=4)
    pieces, final = streamed(model, "hi")
    assert "".join(pieces) == "012345"
    assert final.usage.completion_tokens == 14  # the answer ended before the last window was judged


@pytest.mark.parametrize("stream", [False, True])
def test_refuse_mode(stream: bool) -> None:
    cloud = ScriptedModel("0123456789BOMB", location="cloud")
    guard = ScriptedGuard(["bomb"])
    model = Guarded(cloud, input=guard, output=guard, on_block="refuse", refusal="No.", window=10, overlap=4)
    final = streamed(model, "how to make a bomb")[1] if stream else model.generate("how to make a bomb")
    assert (final.text, final.finish_reason) == ("No.", "content_filter")
    assert cloud.requests == [] and final.egress == ()
    assert "refused, nothing sent" in (final.decision or "")
    # a safe request whose answer is cut: a plain answer is the refusal alone; a stream appends it
    final = streamed(model, "hello")[1] if stream else model.generate("hello")
    assert final.text == ("012345No." if stream else "No.") and final.finish_reason == "content_filter"


def test_error_mode_raises_a_typed_error_with_the_category() -> None:
    cloud = ScriptedModel("fine", location="cloud")
    model = Guarded(cloud, input=ScriptedGuard(["bomb"], category="S9"))
    with pytest.raises(ContentFilteredError, match=r"category S9 \(Indiscriminate Weapons\).*nothing was sent") as err:
        model.generate("how to make a bomb")
    assert err.value.category == "S9"
    with pytest.raises(ContentFilteredError):
        next(iter(model.stream("how to make a bomb")))
    assert cloud.requests == []
    assert model.generate("hello").text == "fine"


CONFIG = """
models:
  cloud: {{engine: scripted, replies: "a fine answer", location: cloud}}
guards:
  words: {{type: scripted, words: [bomb]}}
  broken: {{type: scripted, error: "the head file is gone"}}
pipelines:
  guarded: {{model: cloud, guard: {{input: words, output: words}}}}
  private: {{model: cloud, privacy: {{detectors: [patterns]}}, guard: {{input: words}}}}
  closed: {{model: cloud, guard: {{input: broken}}}}
  open: {{model: cloud, guard: {{input: broken, fail: open}}}}
ledger: "{ledger}"
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return Runtime(parse_config(CONFIG.format(ledger=tmp_path / "egress.jsonl")))


def ledger_lines(runtime: Runtime) -> list[dict[str, object]]:
    assert runtime.ledger is not None
    if not runtime.ledger.exists():
        return []
    return [json.loads(line) for line in runtime.ledger.read_text().splitlines()]


@pytest.mark.parametrize("stream", [False, True])
def test_a_blocked_input_leaves_the_egress_ledger_empty(runtime: Runtime, stream: bool) -> None:
    model = runtime.pipeline("guarded")
    with pytest.raises(ContentFilteredError):
        list(model.stream("how do I build a bomb")) if stream else model.generate("how do I build a bomb")
    assert ledger_lines(runtime) == []
    answer = model.generate("how do I bake bread")
    assert answer.text == "a fine answer"
    assert [line["text"] for line in ledger_lines(runtime)] == [answer.egress[0]]
    assert "how do I bake bread" in answer.egress[0]


def test_the_input_guard_runs_before_the_pii_gatekeeper_on_the_raw_text(runtime: Runtime) -> None:
    model = runtime.pipeline("private")
    assert isinstance(model, Guarded)
    guard = runtime.guard("words")
    assert isinstance(guard, ScriptedGuard)
    answer = model.generate("mail ann.lee@example.com about bread")
    assert guard.seen[-1][0] == "mail ann.lee@example.com about bread"  # raw, on the device
    assert "ann.lee@example.com" not in answer.egress[0]  # masked before it left
    with pytest.raises(ContentFilteredError):
        model.generate("mail ann.lee@example.com about a bomb")
    assert len(ledger_lines(runtime)) == 1  # the blocked one never reached the gatekeeper


def test_a_failing_guard_fails_closed_unless_told_to_fail_open(runtime: Runtime) -> None:
    with pytest.raises(GuardError, match=r"the input guard 'broken' failed .*the head file is gone.*nothing was sent"):
        runtime.pipeline("closed").generate("hello")
    assert ledger_lines(runtime) == []
    answer = runtime.pipeline("open").generate("hello")
    assert answer.text == "a fine answer"
    failed = [e for e in answer.trace if e.operation == "guard"]
    assert failed and failed[0].error == "RuntimeError: the head file is gone"


def test_each_check_is_on_the_trace_with_its_latency(runtime: Runtime) -> None:
    answer = runtime.pipeline("guarded").generate("hello")
    events = [e for e in answer.trace if e.operation == "guard"]
    assert [(e.model, e.role, e.location) for e in events] == [
        ("words", "guard-input", "edge"),
        ("words", "guard-output", "edge"),
    ]
    assert events[0].decision == "request: safe (score 0.000)"
    assert all(e.latency_s >= 0 and e.cost_usd == 0 for e in events)


def test_guarded_refuses_what_its_guard_cannot_screen() -> None:
    model = Guarded(ScriptedModel("x"), output=ScriptedGuard())
    with pytest.raises(ValidationError, match="logprobs"):
        model.generate(Request.of("hi", logprobs=1))
    with pytest.raises(ValidationError, match="input guard, an output guard or both"):
        Guarded(ScriptedModel("x"))
    with pytest.raises(ValidationError, match="overlap < window"):
        Guarded(ScriptedModel("x"), output=ScriptedGuard(), window=10, overlap=10)


def test_a_request_too_long_for_the_guard_is_refused_as_too_long() -> None:
    class Short(ScriptedGuard):
        def _check(self, text: str, kind: Kind, context: str | None) -> Verdict:
            raise ContextLengthError("judge: the prompt has 3000 tokens, which exceeds the context window of 2048")

    cloud = ScriptedModel("x", location="cloud")
    with pytest.raises(ContextLengthError, match="input guard 'scripted' cannot read this much text.*nothing was sent"):
        Guarded(cloud, input=Short()).generate("word " * 3000)
    assert cloud.requests == []
