"""`tandem serve` on the tiny real config through the `openai` SDK: structured output on every pipeline that can
carry it (plain and streamed, each answer validated), tool calls and their round trip, logprobs, n > 1."""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema
import openai
import pytest
from fastapi import FastAPI

from tandemlm.config import load_config
from tandemlm.server import create_app

pytestmark = pytest.mark.slow
Serve = Callable[[FastAPI], str]
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 30}, "country": {"enum": ["France", "Italy", "Spain"]}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "Which city is the capital of France?"}]


@pytest.fixture(scope="module")
def client(serve_module: Serve, smollm2_path: str) -> openai.OpenAI:
    url = serve_module(create_app(load_config("tiny")))
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=300)


@pytest.mark.parametrize("pipeline", ["edge", "cloud", "cascade", "private-cloud", "speculative", "token-routing"])
def test_structured_output_validates_on_every_local_pipeline(client: openai.OpenAI, pipeline: str) -> None:
    r = client.chat.completions.create(
        model=pipeline, messages=ASK, max_tokens=40, temperature=0, response_format=FORMAT
    )  # type: ignore[arg-type]
    assert r.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(r.choices[0].message.content or ""), CITY)
    stream = client.chat.completions.create(
        model=pipeline, messages=ASK, max_tokens=40, temperature=0, response_format=FORMAT, stream=True
    )  # type: ignore[arg-type]
    jsonschema.validate(json.loads("".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)), CITY)


@pytest.mark.parametrize("pipeline", ["speculative", "token-routing"])
def test_token_level_pipelines_refuse_tools_and_logprobs_naming_them(client: openai.OpenAI, pipeline: str) -> None:
    for extra in ({"tools": [WEATHER]}, {"logprobs": True}):
        with pytest.raises(openai.BadRequestError, match=f"pipeline '{pipeline}'"):
            client.chat.completions.create(model=pipeline, messages=ASK, max_tokens=8, **extra)  # type: ignore[arg-type]


def test_tool_call_round_trip_on_the_edge_model(client: openai.OpenAI) -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(
        model="edge", messages=ask, tools=[WEATHER], tool_choice="required", max_tokens=48, temperature=0
    )  # type: ignore[arg-type, list-item]
    (call,) = r.choices[0].message.tool_calls or []
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])  # type: ignore[index]
    stream = client.chat.completions.create(
        model="cascade",
        messages=ask,
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=48,
        temperature=0,
        stream=True,
    )  # type: ignore[arg-type, list-item]
    fragments = [t for ch in stream if ch.choices for t in ch.choices[0].delta.tool_calls or []]
    assert fragments[0].function.name == "get_weather" and json.loads(
        "".join(f.function.arguments or "" for f in fragments)
    )
    history = [
        *ask,
        r.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    final = client.chat.completions.create(
        model="edge", messages=history, tools=[WEATHER], max_tokens=24, temperature=0
    )  # type: ignore[arg-type, list-item]
    assert final.choices[0].message.content or final.choices[0].message.tool_calls


def test_logprobs_and_n_choices(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="edge", messages=ASK, max_tokens=6, temperature=0, logprobs=True, top_logprobs=2
    )  # type: ignore[arg-type]
    content = r.choices[0].logprobs.content or []  # type: ignore[union-attr]
    assert len(content) == r.usage.completion_tokens and all(len(e.top_logprobs) == 2 for e in content)  # type: ignore[union-attr]
    assert all(e.logprob <= 0 for e in content)
    many = client.chat.completions.create(model="edge", messages=ASK, max_tokens=6, temperature=1.0, seed=1, n=2)  # type: ignore[arg-type]
    assert len(many.choices) == 2 and all(c.message.content is not None for c in many.choices)
    t = client.completions.create(
        model="edge", prompt="The capital of France is", max_tokens=4, temperature=0, logprobs=2
    )
    assert t.choices[0].logprobs and len(t.choices[0].logprobs.tokens or []) == t.usage.completion_tokens  # type: ignore[union-attr]
