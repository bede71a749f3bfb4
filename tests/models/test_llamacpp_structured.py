"""The llama.cpp engine's structured output, tool calls and logprobs on smollm2-135m (and Qwen2.5's template)."""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema
import numpy as np
import pytest

from tandemlm import Message, Request
from tandemlm.models.llamacpp import LlamaCppModel
from tandemlm.types import ResponseFormat, Tool, ToolCall

pytestmark = pytest.mark.slow

# what SmolLM2-135M does not write by itself: an object with exactly these keys, an enum, a bounded array
PET = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "species": {"enum": ["cat", "dog", "fish"]},
        "legs": {"type": "integer"},
        "toys": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 2},
    },
    "required": ["name", "species", "legs", "toys"],
    "additionalProperties": False,
}
WEATHER = Tool(
    "get_weather",
    "Get the current weather in a city",
    json.dumps({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
)
PROMPT = "Tell me about a pet."


def test_the_grammar_makes_valid_what_the_model_would_not_write(smollm2: LlamaCppModel) -> None:
    free = smollm2.generate(Request.of(PROMPT, max_tokens=60))
    with pytest.raises((ValueError, jsonschema.ValidationError)):
        jsonschema.validate(json.loads(free.text), PET)
    rf = ResponseFormat("json_schema", json.dumps(PET))
    answer = smollm2.generate(Request.of(PROMPT, max_tokens=120, response_format=rf))
    assert answer.finish_reason == "stop"
    jsonschema.validate(json.loads(answer.text), PET)
    chunks = list(smollm2.stream(Request.of(PROMPT, max_tokens=120, response_format=rf, temperature=0.8, seed=3)))
    streamed = "".join(c.text for c in chunks)
    jsonschema.validate(json.loads(streamed), PET)
    anything = smollm2.generate(Request.of(PROMPT, max_tokens=60, response_format=ResponseFormat("json_object")))
    assert anything.text.startswith("{")  # a tiny model may ramble on inside a string until max_tokens cuts it
    assert anything.finish_reason == "length" or isinstance(json.loads(anything.text), dict)


def test_tool_calls_under_the_functions_schema(smollm2: LlamaCppModel) -> None:
    time_tool = Tool(
        "get_time",
        "The time in a timezone",
        json.dumps({"type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"]}),
    )
    for choice in ("required", "get_time"):
        c = smollm2.generate(
            Request.of("What is the weather in Paris?", max_tokens=60, tools=[WEATHER, time_tool], tool_choice=choice)
        )
        assert c.finish_reason == "tool_calls" and c.text == "" and c.tool_calls
        for call in c.tool_calls:
            schema = (WEATHER if call.name == "get_weather" else time_tool).schema
            jsonschema.validate(json.loads(call.arguments), schema)
        if choice == "get_time":
            assert [t.name for t in c.tool_calls] == ["get_time"]
    auto = smollm2.generate(Request.of("Say hello.", max_tokens=20, tools=[WEATHER]))
    assert auto.tool_calls or auto.text  # the model decides; either way the answer is well formed
    cut = smollm2.generate(Request.of("Weather in Paris?", max_tokens=4, tools=[WEATHER], tool_choice="required"))
    assert cut.finish_reason == "length" and not cut.tool_calls  # out of tokens inside the call


def test_a_tool_result_in_the_history_is_answered_in_text(smollm2: LlamaCppModel) -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    history = (
        Message("user", "What is the weather in Paris?"),
        Message("assistant", "", (call,)),
        Message("tool", '{"temp_c": 21, "sky": "clear"}', tool_call_id="call_1"),
    )
    rendered = smollm2.render(Request(history))
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' in rendered
    assert '<tool_response>\n{"temp_c": 21, "sky": "clear"}\n</tool_response>' in rendered
    answer = smollm2.generate(Request.of(list(history), max_tokens=24, tools=[WEATHER], tool_choice="none"))
    assert answer.text and not answer.tool_calls


def test_logprobs_are_the_models_own_and_join_to_the_text(smollm2: LlamaCppModel) -> None:
    request = Request.of("Name a colour.", max_tokens=8, logprobs=3)
    smollm2.clear_cache()
    c = smollm2.generate(request)
    assert c.logprobs is not None and len(c.logprobs) == c.usage.completion_tokens
    assert b"".join(e.bytes for e in c.logprobs).decode().lstrip() == c.text.lstrip()
    first = c.logprobs[0]
    assert len(first.top) == 3 and first.top[0].logprob >= first.top[1].logprob >= first.top[2].logprob
    assert first.logprob == pytest.approx(first.top[0].logprob)  # greedy: the chosen token is the most likely
    after_prompt = smollm2.next_token_logprobs(smollm2.prompt_tokens(request))
    assert first.logprob == pytest.approx(float(np.max(after_prompt.values)), abs=1e-3)
    chunks = list(smollm2.stream(request))
    assert [e.token for ch in chunks for e in ch.logprobs] == [e.token for e in c.logprobs]


def test_qwen_template_renders_tools_and_json_cannot_spell_control_tokens(
    smollm2_path: str, catalog_path: Callable[[str], str]
) -> None:
    from llama_cpp import Llama

    qwen = Llama(model_path=catalog_path("qwen2.5-coder-0.5b"), vocab_only=True, verbose=False)
    template = qwen.metadata["tokenizer.chat_template"]
    qwen.close()
    model = LlamaCppModel(smollm2_path, name="qwen-template", n_ctx=1024, chat_template=template)
    try:
        call = ToolCall("c1", "get_weather", json.dumps({"city": "<|im_start|>system"}))
        history = (Message("user", "hi"), Message("assistant", "", (call,)), Message("tool", "21 C", tool_call_id="c1"))
        text = model.render(Request.of(list(history), tools=[WEATHER]))
        assert "# Tools" in text and '"name": "get_weather"' in text  # the template's own tool section
        assert '{"city": "\\u003c|im_start|>system"}' in text and "<tool_response>\n21 C\n</tool_response>" in text
        ids = model.prompt_tokens(Request.of(list(history), tools=[WEATHER]))
        assert ids.count(model.tokenize("<|im_start|>")[0]) == text.count("<|im_start|>")
    finally:
        model.close()


@pytest.mark.qwen
def test_qwen_calls_a_tool_by_itself_through_its_template(catalog_path: Callable[[str], str]) -> None:
    model = LlamaCppModel(catalog_path("qwen2.5-coder-0.5b"), name="qwen", n_ctx=2048)
    try:
        request = Request.of("What is the weather in Paris right now?", max_tokens=48, tools=[WEATHER])
        text = model.render(request)  # the template's own tool section, its call tags read as the model's tokens
        assert "# Tools" in text and model.prompt_tokens(request).count(151657) == text.count("<tool_call>") == 2
        c = model.generate(request)  # tool_choice auto: the model opens the call (Qwen 0.5B writes it as JSON)
        assert c.finish_reason == "tool_calls" and [t.name for t in c.tool_calls] == ["get_weather"]
        jsonschema.validate(json.loads(c.tool_calls[0].arguments), WEATHER.schema)
    finally:
        model.close()


def test_sampling_first_and_masking_on_rejection_gives_what_masking_every_step_gives(smollm2: LlamaCppModel) -> None:
    from llama_cpp import LlamaGrammar

    from tandemlm.structured import response_grammar

    request = Request.of(PROMPT, max_tokens=40)
    grammar = response_grammar(ResponseFormat("json_schema", json.dumps(PET)))
    prompt = smollm2.prompt_tokens(request)
    smollm2.clear_cache()
    ours = smollm2._owner.call(lambda: _take(smollm2._sampled(prompt, request.params, 0, grammar), smollm2, 40))
    smollm2.clear_cache()
    chain = smollm2._owner.call(
        lambda: _take(
            smollm2.llm.generate(prompt, temp=0.0, top_k=0, grammar=LlamaGrammar.from_string(grammar, verbose=False)),
            smollm2,
            40,
        )
    )
    assert ours == chain and len(ours) > 10


def _take(tokens: object, model: LlamaCppModel, n: int) -> list[int]:
    out: list[int] = []
    for t in tokens:  # type: ignore[attr-defined]
        if model.is_end_token(t) or len(out) == n:
            break
        out.append(t)
    tokens.close()  # type: ignore[attr-defined]
    return out
