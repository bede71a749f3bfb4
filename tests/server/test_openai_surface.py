"""The OpenAI surface beyond plain text, through the real `openai` SDK on scripted models: structured output,
tool calls (plain and streamed), n > 1, logprobs on chat and completions, seed / user / metadata."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import openai
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from tandemlm import Request, Runtime, ScriptedModel
from tandemlm.config import parse_config
from tandemlm.server import create_app

Serve = Callable[[FastAPI], str]
CONFIG = """
models:
  small: {engine: scripted, location: edge}
  big: {engine: scripted, location: cloud, price: {input: 1.0, output: 2.0}}
pipelines:
  edge: {model: small}
  cloud: {model: big}
  speculative: {strategy: {speculative: {draft: small, target: big}}}
  fallback: {model: big, fallback: small}
"""
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


class Person(BaseModel):
    name: str
    age: int


def gateway(
    serve: Serve, small: object = "small says hi", big: object = "big says hi"
) -> tuple[openai.OpenAI, ScriptedModel, ScriptedModel]:
    edge = ScriptedModel(small, name="small")  # type: ignore[arg-type]
    cloud = ScriptedModel(big, name="big", location="cloud")  # type: ignore[arg-type]
    url = serve(create_app(Runtime(parse_config(CONFIG), models={"small": edge, "big": cloud})))
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0), edge, cloud


def ask(text: str = "hi") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_structured_output_with_the_sdks_parse_helper(serve: Serve) -> None:
    c, _, cloud = gateway(serve, big='{"name": "Ann", "age": 7}')
    r = c.chat.completions.parse(model="cloud", messages=ask("Ann is 7."), response_format=Person)  # type: ignore[arg-type]
    assert r.choices[0].message.parsed == Person(name="Ann", age=7)
    rf = cloud.requests[-1].params.response_format
    assert (
        rf is not None
        and rf.type == "json_schema"
        and rf.strict
        and json.loads(rf.schema or "")["required"] == ["name", "age"]
    )
    stream = c.chat.completions.create(
        model="cloud", messages=ask(), response_format={"type": "json_object"}, stream=True
    )  # type: ignore[arg-type]
    assert json.loads("".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)) == {
        "name": "Ann",
        "age": 7,
    }


def test_a_remote_answer_that_breaks_the_schema_is_retried_once_then_a_502(serve: Serve) -> None:
    c, _, cloud = gateway(serve, big=["Ann, 7", '{"name": "Ann", "age": 7}', "not json", '{"name": 5}'])
    r = c.chat.completions.parse(model="cloud", messages=ask(), response_format=Person)  # type: ignore[arg-type]
    assert r.choices[0].message.parsed == Person(name="Ann", age=7) and len(cloud.requests) == 2
    assert len(r.model_extra["tandem"]["calls"]) == 2  # the broken answer cost a call too
    with pytest.raises(openai.InternalServerError) as err:
        c.chat.completions.parse(model="cloud", messages=ask(), response_format=Person)  # type: ignore[arg-type]
    assert err.value.status_code == 502 and "invalid after 2 attempts" in err.value.message
    assert "5 is not of type 'string'" in err.value.message and len(cloud.requests) == 4


def test_a_broken_streamed_answer_ends_with_an_in_band_error(serve: Serve) -> None:
    c, _, _ = gateway(serve, big="Ann is seven")
    stream = c.chat.completions.create(
        model="cloud", messages=ask(), response_format={"type": "json_object"}, stream=True
    )  # type: ignore[arg-type]
    with pytest.raises(openai.APIError, match="not valid JSON"):
        list(stream)


def test_token_level_strategies_refuse_structured_output_naming_the_pipeline(serve: Serve) -> None:
    c, _, _ = gateway(serve)
    for extra in ({"response_format": {"type": "json_object"}}, {"tools": [WEATHER]}, {"logprobs": True}):
        with pytest.raises(
            openai.BadRequestError, match="pipeline 'speculative' .SpeculativeDecoder. does not support"
        ):
            c.chat.completions.create(model="speculative", messages=ask(), **extra)  # type: ignore[arg-type]


def test_tool_calls_plain_streamed_and_the_round_trip(serve: Serve) -> None:
    c, _, cloud = gateway(serve, big=[CALL, CALL, "It is 21 C in Paris."])
    r = c.chat.completions.create(model="cloud", messages=ask("Weather in Paris?"), tools=[WEATHER])  # type: ignore[arg-type, list-item]
    choice = r.choices[0]
    (call,) = choice.message.tool_calls or []
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert (
        call.type == "function"
        and call.function.name == "get_weather"
        and json.loads(call.function.arguments) == {"city": "Paris"}
    )
    stream = c.chat.completions.create(model="cloud", messages=ask("Weather in Paris?"), tools=[WEATHER], stream=True)  # type: ignore[arg-type, list-item]
    deltas = [ch.choices[0] for ch in stream if ch.choices]
    fragments = [t for d in deltas for t in d.delta.tool_calls or []]
    assert fragments[0].id and fragments[0].function.name == "get_weather" and all(f.index == 0 for f in fragments)
    assert json.loads("".join(f.function.arguments or "" for f in fragments)) == {"city": "Paris"}
    assert deltas[-1].finish_reason == "tool_calls"
    history = [
        *ask("Weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    final = c.chat.completions.create(model="cloud", messages=history, tools=[WEATHER])  # type: ignore[arg-type, list-item]
    assert final.choices[0].message.content == "It is 21 C in Paris." and final.choices[0].finish_reason == "stop"
    seen = cloud.requests[-1].messages
    assert seen[1].tool_calls[0].name == "get_weather" and seen[2].role == "tool" and seen[2].tool_call_id == call.id


def test_tool_choice_is_checked_and_carried(serve: Serve) -> None:
    c, _, cloud = gateway(serve, big=["plain text", "plain text", CALL])
    with pytest.raises(openai.InternalServerError, match="calls no tool"):
        c.chat.completions.create(model="cloud", messages=ask(), tools=[WEATHER], tool_choice="required")  # type: ignore[arg-type, list-item]
    named = {"type": "function", "function": {"name": "get_weather"}}
    r = c.chat.completions.create(
        model="fallback", messages=ask(), tools=[WEATHER], tool_choice=named, parallel_tool_calls=False
    )  # type: ignore[arg-type, list-item]
    assert r.choices[0].message.tool_calls and r.model_extra["tandem"]["decision"] == "primary"
    params = cloud.requests[-1].params
    assert params.tool_choice == "get_weather" and not params.parallel_tool_calls
    with pytest.raises(openai.BadRequestError, match="tool_choice must be"):
        c.chat.completions.create(
            model="cloud",
            messages=ask(),
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )  # type: ignore[arg-type, list-item]


def test_n_choices_seeds_and_copies(serve: Serve) -> None:
    c, _, cloud = gateway(serve, big=["one", "two", "three", "greedy"])
    r = c.chat.completions.create(
        model="cloud", messages=ask(), n=3, temperature=0.8, seed=10, user="u1", metadata={"k": "v"}
    )  # type: ignore[arg-type]
    assert [ch.message.content for ch in r.choices] == ["one", "two", "three"] and [ch.index for ch in r.choices] == [
        0,
        1,
        2,
    ]
    assert [q.params.seed for q in cloud.requests] == [10, 11, 12]
    assert r.usage and r.usage.completion_tokens == 3 + 3 + 5 and len(r.model_extra["tandem"]["calls"]) == 3
    greedy = c.chat.completions.create(model="cloud", messages=ask(), n=2, temperature=0)  # type: ignore[arg-type]
    assert [ch.message.content for ch in greedy.choices] == ["greedy", "greedy"] and len(cloud.requests) == 4


def test_n_choices_streamed(serve: Serve) -> None:
    c, _, _ = gateway(serve, big=["one", "two"])
    stream = c.chat.completions.create(
        model="cloud", messages=ask(), n=2, temperature=1, stream=True, stream_options={"include_usage": True}
    )  # type: ignore[arg-type]
    text: dict[int, str] = {}
    finished = []
    usage = None
    for ch in stream:
        for choice in ch.choices:
            text[choice.index] = text.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished.append(choice.index)
        usage = ch.usage or usage
    assert text == {0: "one", 1: "two"} and finished == [0, 1] and usage is not None and usage.completion_tokens == 6


def test_logprobs_on_chat_and_completions_plain_and_streamed(serve: Serve) -> None:
    c, _, _ = gateway(serve, big="abc")
    r = c.chat.completions.create(model="cloud", messages=ask(), logprobs=True, top_logprobs=2)  # type: ignore[arg-type]
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert (
        [e.token for e in content or []] == ["a", "b", "c"]
        and content[0].bytes == [97]
        and content[0].top_logprobs[0].token == "a"
    )  # type: ignore[index]
    stream = c.chat.completions.create(model="cloud", messages=ask(), logprobs=True, stream=True)  # type: ignore[arg-type]
    tokens = [
        e.token for ch in stream for choice in ch.choices if choice.logprobs for e in choice.logprobs.content or []
    ]
    assert tokens == ["a", "b", "c"]
    t = c.completions.create(model="cloud", prompt="x", logprobs=1)
    assert (
        t.choices[0].logprobs
        and t.choices[0].logprobs.tokens == ["a", "b", "c"]
        and t.choices[0].logprobs.text_offset == [0, 1, 2]
    )
    plain = c.chat.completions.create(model="cloud", messages=ask())  # type: ignore[arg-type]
    assert plain.choices[0].logprobs is None


def test_messages_with_null_content_need_tool_calls(serve: Serve) -> None:
    c, _, _ = gateway(serve)
    url = str(c.base_url).rstrip("/")
    for message, why in (
        ({"role": "assistant", "content": None}, "needs content"),
        ({"role": "tool", "content": "21"}, "tool_call_id"),
        (
            {
                "role": "user",
                "content": "x",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            "only assistant",
        ),
    ):
        r = httpx.post(f"{url}/chat/completions", json={"model": "cloud", "messages": [*ask(), message]})
        assert r.status_code == 400 and why in r.json()["error"]["message"], r.text


def test_requests_are_built_from_the_wire_as_the_library_would() -> None:
    from tandemlm.server.protocol import ChatCompletionRequest

    rf = {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": True}}
    body = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": ask(), "tools": [WEATHER], "tool_choice": "required", "logprobs": True,
         "top_logprobs": 3, "response_format": rf}
    )  # fmt: skip
    request = body.to_request()
    assert isinstance(request, Request) and request.features == {"tools", "logprobs", "response_format"}
    assert request.params.tool_choice == "required" and request.params.logprobs == 3
    assert request.params.response_format is not None and request.params.response_format.name == "p"


def test_text_completions_with_n_and_logprobs_streamed(serve: Serve) -> None:
    c, _, _ = gateway(serve, big=["ab", "cd"])
    stream = c.completions.create(model="cloud", prompt="x", n=2, temperature=1, logprobs=0, stream=True)
    text: dict[int, str] = {}
    tokens: dict[int, list[str]] = {}
    for ch in stream:
        for choice in ch.choices:
            text[choice.index] = text.get(choice.index, "") + choice.text
            tokens.setdefault(choice.index, []).extend(choice.logprobs.tokens or [] if choice.logprobs else [])
    assert text == {0: "ab", 1: "cd"} and tokens == {0: ["a", "b"], 1: ["c", "d"]}
