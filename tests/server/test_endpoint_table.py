"""The README's endpoint table against the wire types: every top-level parameter a request type accepts is
listed in its row, every listed one is accepted (a request carrying them all answers 200), and OpenAI
parameters tandem does not implement are a 400 naming the parameter."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from tandemlm import Runtime, ScriptedModel
from tandemlm.config import parse_config
from tandemlm.server import create_app
from tandemlm.server.embeddings import EmbeddingRequest
from tandemlm.server.protocol import ChatCompletionRequest, CompletionRequest

Serve = Callable[[FastAPI], str]
README = Path(__file__).resolve().parents[2] / "README.md"
CONFIG = """
models:
  m: {engine: scripted, location: cloud}
pipelines:
  cloud: {model: m}
"""
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "weather", "parameters": SCHEMA,
                                         "strict": True}}  # fmt: skip
EVERYTHING = {
    "model": "cloud", "max_tokens": 64, "temperature": 0, "top_p": 1, "stop": ["\n\n"], "seed": 7,
    "stream_options": {"include_usage": True}, "n": 2, "user": "u-1", "metadata": {"app": "test"},
    "frequency_penalty": 0, "presence_penalty": 0,
}  # fmt: skip
CHAT = {
    **EVERYTHING, "max_completion_tokens": 64, "logprobs": True, "top_logprobs": 2,
    "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA, "strict": True}},
    "tools": [TOOL], "tool_choice": "auto", "parallel_tool_calls": False,
    "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}], "name": "ann"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp_c": 21}'},
        {"role": "user", "content": "And as JSON?"},
    ],
}  # fmt: skip
COMPLETION = {**EVERYTHING, "prompt": ["Once upon"], "echo": False, "logprobs": 2}


def row(endpoint: str) -> str:
    (line,) = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith(f"| {endpoint}")]
    return line


def fields(wire: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in wire.model_fields.items()}


@pytest.mark.parametrize(
    ("wire", "endpoint", "shared"),
    [
        (ChatCompletionRequest, "`POST /v1/chat/completions`", ""),
        (CompletionRequest, "`POST /v1/completions`", "`POST /v1/chat/completions`"),  # "the sampling parameters above"
        (EmbeddingRequest, "`POST /v1/embeddings`", ""),
    ],
)
def test_every_accepted_parameter_is_in_the_readmes_table(wire: type[BaseModel], endpoint: str, shared: str) -> None:
    text = row(endpoint) + (row(shared) if shared else "")
    unlisted = sorted(name for name in fields(wire) if f"`{name}`" not in text and name != "model")
    assert not unlisted, f"{endpoint} accepts {unlisted}, which the README's endpoint table does not list"


def test_every_listed_parameter_is_accepted(serve: Serve) -> None:
    assert fields(ChatCompletionRequest) - {"stream"} <= set(CHAT) and fields(CompletionRequest) - {"stream"} <= set(
        COMPLETION
    )
    model = ScriptedModel(lambda r: '{"city": "Paris"}' if r.params.response_format else " a time", name="m")
    url = serve(create_app(Runtime(parse_config(CONFIG), models={"m": model}))) + "/v1"
    for path, body in (("chat/completions", CHAT), ("completions", COMPLETION)):
        for stream in (False, True):
            r = httpx.post(f"{url}/{path}", json={**body, "stream": stream})
            assert r.status_code == 200, (path, stream, r.text)
    answer = httpx.post(f"{url}/chat/completions", json=CHAT).json()
    assert [json.loads(c["message"]["content"]) for c in answer["choices"]] == [{"city": "Paris"}] * 2
    seen = model.requests[0]
    assert [m.role for m in seen.messages] == ["system", "user", "assistant", "tool", "user"]


@pytest.mark.parametrize(
    ("path", "extra", "named"),
    [
        ("chat/completions", {"logit_bias": {"1": 5}}, "logit_bias"),
        ("chat/completions", {"functions": [TOOL["function"]]}, "functions"),
        ("chat/completions", {"function_call": "auto"}, "function_call"),
        ("chat/completions", {"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ("chat/completions", {"modalities": ["text", "audio"]}, "modalities"),
        ("chat/completions", {"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ("chat/completions", {"reasoning_effort": "low"}, "reasoning_effort"),
        ("chat/completions", {"service_tier": "auto"}, "service_tier"),
        ("chat/completions", {"web_search_options": {}}, "web_search_options"),
        ("chat/completions", {"presence_penalty": 0.5}, "presence_penalty"),
        ("completions", {"echo": True}, "echo"),
        ("completions", {"suffix": "end"}, "suffix"),
        ("completions", {"best_of": 2}, "best_of"),
        ("completions", {"logit_bias": {"1": 5}}, "logit_bias"),
    ],
)
def test_an_unsupported_parameter_is_a_400_naming_it(serve: Serve, path: str, extra: dict[str, object],
                                                     named: str) -> None:  # fmt: skip
    url = serve(create_app(Runtime(parse_config(CONFIG), models={"m": ScriptedModel("x", name="m")}))) + "/v1"
    body = {"model": "cloud", **({"prompt": "x"} if path == "completions" else {"messages": [{"role": "user",
            "content": "x"}]}), **extra}  # fmt: skip
    r = httpx.post(f"{url}/{path}", json=body)
    assert r.status_code == 400 and named in r.json()["error"]["message"], r.text
