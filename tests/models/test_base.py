"""The LanguageModel base class on scripted engines: tracing, usage, cost, egress, validation, errors."""

from __future__ import annotations

import asyncio
import contextvars
import json
import math
from collections.abc import Iterator

import numpy as np
import pytest

from tandemlm import Completion, LanguageModel, Message, Price, Recorder, Request, ScriptedModel, Usage
from tandemlm.errors import ContextLengthError, EngineError, UnsupportedOperationError, ValidationError
from tandemlm.types import Chunk


def test_generate_records_usage_latency_and_cost() -> None:
    cloud = ScriptedModel("four", name="big", location="cloud", price=Price(input=2.0, output=10.0))
    c = cloud.generate(Request.of("2+2?"))
    assert c.text == "four" and c.finish_reason == "stop" and c.model == "big"
    assert c.usage == Usage(prompt_tokens=4, completion_tokens=4)  # one token per character
    (event,) = c.trace
    assert (event.model, event.location, event.operation, event.role) == ("big", "cloud", "generate", "model")
    assert event.cost_usd == pytest.approx((4 * 2.0 + 4 * 10.0) / 1e6)
    assert c.cost_usd == event.cost_usd
    assert event.latency_s >= 0


def test_cloud_calls_record_the_exact_egress_and_edge_calls_none() -> None:
    msgs = (Message("system", "be brief"), Message("user", "my card is 4111 1111 1111 1111"))
    cloud = ScriptedModel("ok", location="cloud")
    edge = ScriptedModel("ok", location="edge")
    sent = cloud.generate(Request(msgs)).egress
    assert json.loads(sent[0]) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": msgs[1].content},
    ]
    assert edge.generate(Request(msgs)).egress == ()


def test_ledger_file_gets_one_line_per_cloud_call(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ledger = tmp_path / "egress.jsonl"
    cloud, edge = ScriptedModel("a", name="c", location="cloud"), ScriptedModel("b", location="edge")
    with Recorder(ledger=ledger) as rec:
        cloud.generate("secret 1")
        edge.generate("secret 2")
        cloud.generate("secret 3")
    lines = [json.loads(x) for x in ledger.read_text().splitlines()]
    assert [json.loads(x["text"])[0]["content"] for x in lines] == ["secret 1", "secret 3"]
    assert all(x["model"] == "c" and x["operation"] == "generate" for x in lines)
    assert len(rec.events) == 3


class _Relay(LanguageModel):
    """A minimal strategy: asks the edge, then the cloud with the edge's draft."""

    def __init__(self, edge: LanguageModel, cloud: LanguageModel) -> None:
        super().__init__("relay")
        self.edge, self.cloud = edge, cloud

    def _generate(self, request: Request) -> Completion:
        draft = self.edge.generate(request, role="draft")
        final = self.cloud.generate(Request.of(f"improve: {draft.text}"), role="verifier")
        return Completion(final.text, "stop", final.usage, self.name)


def test_nested_strategies_carry_the_trace_of_every_inner_call() -> None:
    edge = ScriptedModel("draft", name="e")
    cloud = ScriptedModel("final", name="c", location="cloud", price=Price(1.0, 1.0))
    c = _Relay(edge, cloud).generate("q")
    assert [(e.model, e.role) for e in c.trace] == [("e", "draft"), ("c", "verifier"), ("relay", "model")]
    assert c.egress == (json.dumps([{"role": "user", "content": "improve: draft"}]),)
    assert c.cost_usd == pytest.approx((len("improve: draft") + len("final")) / 1e6)
    # the same events reach an outer recorder exactly once
    with Recorder() as rec:
        _Relay(ScriptedModel("x"), ScriptedModel("y")).generate("q")
    assert [e.model for e in rec.events] == ["scripted", "scripted", "relay"]


def test_stream_pieces_join_to_the_traced_final_completion() -> None:
    model = ScriptedModel("hello", location="cloud")
    chunks = list(model.stream("hi"))
    assert "".join(c.text for c in chunks) == "hello"
    final = chunks[-1].completion
    assert final is not None and final.text == "hello" and chunks[-1].finish_reason == "stop"
    assert [e.operation for e in final.trace] == ["stream"]
    assert all(c.completion is None for c in chunks[:-1])


def test_max_tokens_and_stop_sequences() -> None:
    model = ScriptedModel("abcdef")
    c = model.generate(Request.of("x", max_tokens=3))
    assert (c.text, c.finish_reason, c.usage.completion_tokens) == ("abc", "length", 3)
    c = model.generate(Request.of("x", stop=["d", "cd"]))
    assert (c.text, c.finish_reason, c.usage.completion_tokens) == ("ab", "stop", 2)


def test_engine_errors_become_typed_and_are_traced() -> None:
    boom = RuntimeError("disk on fire")
    model = ScriptedModel(["fine", boom], name="flaky")
    with Recorder() as rec:
        assert model.generate("a").text == "fine"
        with pytest.raises(EngineError, match="flaky: RuntimeError: disk on fire") as info:
            model.generate("b")
    assert info.value.__cause__ is boom
    assert rec.events[-1].error == "RuntimeError: disk on fire"
    once = ScriptedModel(["one"])
    once.generate("a")
    with pytest.raises(EngineError, match="ran out of replies after 1 requests"):
        once.generate("b")


def test_stream_errors_are_typed_too() -> None:
    class Broken(ScriptedModel):
        def _stream(self, request: Request) -> Iterator[Chunk]:
            yield Chunk("par")
            raise OSError("connection reset")

    with pytest.raises(EngineError, match="connection reset"):
        list(Broken().stream("x"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Request(()), "at least one message"),
        (lambda: Message("robot", "x"), "role must be one of"),  # type: ignore[arg-type]
        (lambda: Request.of("x", max_tokens=0), "max_tokens must be a positive integer"),
        (lambda: Request.of("x", temperature=3.0), "temperature must be in"),
        (lambda: Request.of("x", top_p=0.0), "top_p must be in"),
        (lambda: Request.of("x", stop=[""]), "stop sequences"),
    ],
)
def test_bad_requests_raise_validation_errors(build, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=message):
        build()


def test_context_window_is_checked_before_any_work() -> None:
    model = ScriptedModel("never", context_length=10)
    with pytest.raises(ContextLengthError, match="prompt has 6 tokens and max_tokens is 5.*context window of 10"):
        model.generate(Request.of("abcdef", max_tokens=5))
    assert model.requests == []
    assert model.generate(Request.of("abcdef", max_tokens=4)).text == "neve"


def test_generate_rejects_non_requests() -> None:
    with pytest.raises(ValidationError, match="expected a Request"):
        ScriptedModel().generate(42)  # type: ignore[arg-type]


def test_agenerate_traces_like_generate() -> None:
    cloud = ScriptedModel("yes", location="cloud", price=Price(0, 1000))
    c = asyncio.run(cloud.agenerate("ok?"))
    assert c.text == "yes" and c.cost_usd == pytest.approx(3 * 1000 / 1e6) and len(c.egress) == 1


VOCAB = ("<unk>", "a", "b", "c")


def test_next_token_logprobs_is_a_normalised_distribution_and_top_k_is_sorted() -> None:
    model = ScriptedModel(logits=lambda prefix: [0.0, 1.0, 2.0, float(len(prefix))], vocab=VOCAB)
    lp = model.next_token_logprobs([1, 2, 3, 1])
    assert lp.complete and math.isclose(float(np.exp(lp.values).sum()), 1.0)
    assert lp.argmax() == 3 and lp.top(2)[0][0] == 3 and lp.top(2)[1][0] == 2
    top = model.next_token_logprobs([1], top_k=2)
    assert not top.complete and [i for i, _ in top.top(5)] == [2, 1]
    assert top.logprob(0) == -math.inf and top.dense()[0] == -np.inf
    with pytest.raises(ValidationError, match="at least one token"):
        model.next_token_logprobs([])


def test_score_sums_the_continuation_log_likelihood() -> None:
    logits = {1: [0.0, 0.0, math.log(3.0), 0.0], 2: [0.0, 0.0, 0.0, math.log(5.0)]}
    model = ScriptedModel(logits=lambda prefix: logits[prefix[-1]], vocab=VOCAB)
    expected = math.log(3 / 6) + math.log(5 / 8)  # P(b | a) * P(c | a b)
    assert model.score("a", "bc") == pytest.approx(expected)
    with pytest.raises(ValidationError, match="non-empty continuation"):
        model.score("a", "")


def test_vocab_fingerprint_depends_on_the_vocabulary_only() -> None:
    a, b = ScriptedModel(vocab=VOCAB), ScriptedModel(vocab=VOCAB, name="other", location="cloud")
    assert a.vocab_fingerprint == b.vocab_fingerprint
    assert a.vocab_fingerprint != ScriptedModel(vocab=("<unk>", "a", "b", "d")).vocab_fingerprint
    assert a.tokenize("abcx") == [1, 2, 3, 0] and a.detokenize([3, 2, 1]) == "cba"


def test_engines_without_logits_say_so() -> None:
    class TextOnly(LanguageModel):
        def _generate(self, request: Request) -> Completion:
            return Completion("t", "stop", Usage(), self.name)

    with pytest.raises(UnsupportedOperationError, match="cannot give next-token logprobs"):
        TextOnly("t").next_token_logprobs([1])
    assert TextOnly("t").vocab_fingerprint is None
    assert "".join(c.text for c in TextOnly("t").stream("x")) == "t"  # default stream falls back to generate


def test_a_finished_stream_leaves_no_traced_call_open_for_another_context() -> None:
    """A consumer stops at the final chunk; the generators are collected later, maybe in another thread or
    context. Nothing may still sit inside a traced call then (its context-local trace cannot be reset there)."""
    inner = ScriptedModel("abc", name="inner")

    class Wrapper(LanguageModel):
        def _stream(self, request: Request) -> Iterator[Chunk]:
            yield from inner.stream(request, role="inner")

    pieces = Wrapper("wrapper").stream("q")
    chunks = [next(pieces) for _ in range(4)]
    assert "".join(c.text for c in chunks) == "abc" and chunks[-1].completion is not None
    contextvars.Context().run(pieces.close)  # raised ValueError while the final chunk was yielded inside the call


# ---- structured output, tools and their checks --------------------------------------------------------------


def _person() -> object:
    from tandemlm.types import ResponseFormat

    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    return ResponseFormat("json_schema", json.dumps(schema))


def test_a_broken_structured_answer_is_asked_for_once_more() -> None:
    cloud = ScriptedModel(["Sure! Ann.", '{"name": "Ann"}'], location="cloud")
    with Recorder() as rec:
        c = cloud.generate(Request.of("who?", response_format=_person()))
    assert json.loads(c.text) == {"name": "Ann"}
    assert len(rec.events) == 2 and len(cloud.requests) == 2  # both calls traced, both sent


def test_a_structured_answer_broken_twice_is_an_invalid_output_error() -> None:
    from tandemlm.errors import InvalidOutputError

    cloud = ScriptedModel(["nope", '{"age": 3}', "never asked"], name="big", location="cloud")
    with pytest.raises(
        InvalidOutputError, match="big: the model's answer is invalid after 2 attempts: .*'name' is a req"
    ):
        cloud.generate(Request.of("who?", response_format=_person()))
    assert len(cloud.requests) == 2
    with pytest.raises(InvalidOutputError, match="not valid JSON"):  # a stream cannot be asked again
        list(ScriptedModel("nope").stream(Request.of("who?", response_format=_person())))


def test_scripted_tool_calls_and_logprobs() -> None:
    from tandemlm.types import Tool

    tool = Tool("lookup", "find a word", json.dumps({"type": "object", "properties": {"q": {"type": "string"}}}))
    reply = '<tool_call>\n{"name": "lookup", "arguments": {"q": "tandem"}}\n</tool_call>'
    c = ScriptedModel(reply).generate(Request.of("define tandem", tools=[tool]))
    assert c.finish_reason == "tool_calls" and c.text == ""
    assert [(t.name, json.loads(t.arguments)) for t in c.tool_calls] == [("lookup", {"q": "tandem"})]
    assert ScriptedModel(reply).generate(Request.of("x")).text == reply  # no tools asked for: it is text
    chunks = list(ScriptedModel("hey").stream(Request.of("x", logprobs=1)))
    final = chunks[-1].completion
    assert final is not None and [e.token for e in final.logprobs or ()] == ["h", "e", "y"]
    assert sum(len(ch.logprobs) for ch in chunks) == 3 and final.logprobs[0].top[0].token == "h"  # type: ignore[index]


def test_token_level_strategies_refuse_what_they_cannot_honour_and_selectors_carry_it() -> None:
    from tandemlm.collab.cascade import Cascade
    from tandemlm.collab.speculative import SpeculativeDecoder

    vocab = tuple(chr(i) for i in range(256))
    flat = lambda tokens: np.zeros(256)  # noqa: E731
    a, b = ScriptedModel('{"name": "A"}', vocab=vocab, logits=flat), ScriptedModel('{"name": "B"}', vocab=vocab)
    spec = SpeculativeDecoder(a, b, name="spec")
    with pytest.raises(ValidationError, match="pipeline 'spec' .SpeculativeDecoder. does not support response_format"):
        spec.generate(Request.of("who?", response_format=_person()))
    cascade = Cascade(a, b, signal="logprob", threshold=-1e9, name="casc")
    assert cascade.features == a.features
    assert json.loads(cascade.generate(Request.of("who?", response_format=_person())).text) == {"name": "A"}
    assert a.requests[-1].params.response_format == _person()  # the child decoded under the same format


def test_cloud_egress_holds_tools_and_schemas() -> None:
    from tandemlm.types import Tool

    tool = Tool("lookup", "find a word")
    sent = ScriptedModel("ok", location="cloud").generate(Request.of("hi", tools=[tool])).egress[0]
    assert json.loads(sent)["tools"][0]["function"]["name"] == "lookup"
