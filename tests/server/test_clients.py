"""Real client libraries against the gateway: LangChain's ChatOpenAI (`with_structured_output`, `bind_tools` and a
tool round trip, streamed and not) and LiteLLM's OpenAI-compatible client, on scripted models and on the tiny
real config (where the grammar makes the small model's answers valid)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from tandemlm import Request, Runtime, ScriptedModel
from tandemlm.config import load_config, parse_config
from tandemlm.server import create_app

langchain_openai = pytest.importorskip("langchain_openai")
from langchain_core.messages import HumanMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402

Serve = Callable[[FastAPI], str]
CONFIG = """
models:
  m: {engine: scripted, location: cloud}
pipelines:
  cloud: {model: m}
"""


class City(BaseModel):
    """A city and its country."""

    city: str = Field(description="the city's name")
    country: str


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return json.dumps({"city": city, "temp_c": 21})


@tool
def get_time(timezone: str) -> str:
    """Get the current time in a timezone."""
    return "12:00"


def scripted(serve: Serve, replies: Any) -> tuple[str, ScriptedModel]:
    model = ScriptedModel(replies, name="m", location="cloud")
    return serve(create_app(Runtime(parse_config(CONFIG), models={"m": model}))) + "/v1", model


def chat(url: str, model: str = "cloud", **options: Any) -> Any:
    return langchain_openai.ChatOpenAI(base_url=url, api_key="unused", model=model, max_retries=0, **options)


def weather_call(request: Request) -> str:
    """A model that calls get_weather for Paris, then answers from the tool's result."""
    if request.messages[-1].role == "tool":
        return "It is " + str(json.loads(request.messages[-1].content)["temp_c"]) + " C in Paris."
    return '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def test_langchain_structured_output(serve: Serve) -> None:
    url, model = scripted(serve, '{"city": "Paris", "country": "France"}')
    for method in ("json_schema", "json_mode", "function_calling"):
        if method == "function_calling":
            model._replies = lambda r: (
                '<tool_call>\n{"name": "City", "arguments": {"city": "Paris", "country": "France"}}\n</tool_call>'
            )  # type: ignore[assignment]
        answer = chat(url).with_structured_output(City, method=method).invoke("Capital of France?")
        assert answer == City(city="Paris", country="France"), method
    rf = model.requests[0].params.response_format
    assert (
        rf is not None and rf.type == "json_schema" and json.loads(rf.schema or "")["required"] == ["city", "country"]
    )


@pytest.mark.parametrize("stream", [False, True])
def test_langchain_bind_tools_round_trip(serve: Serve, stream: bool) -> None:
    url, model = scripted(serve, weather_call)
    llm = chat(url, streaming=stream).bind_tools([get_weather, get_time])
    history: list[Any] = [HumanMessage("What is the weather in Paris?")]
    ai = llm.invoke(history)
    (call,) = ai.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"} and call["id"]
    history += [ai, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
    final = llm.invoke(history)
    assert final.content == "It is 21 C in Paris." and not final.tool_calls
    seen = model.requests[-1]
    assert [t.name for t in seen.params.tools] == ["get_weather", "get_time"]
    assert seen.messages[1].tool_calls[0].id == call["id"] and seen.messages[2].tool_call_id == call["id"]


@pytest.fixture
def caller_loop() -> Iterator[None]:
    """An event loop for this thread, closed after the test: LiteLLM's service logger runs its hooks on
    `asyncio.get_event_loop()` from a blocking call, which would otherwise create a loop nobody closes (its
    self-pipe socket is then reported unclosed in whichever later test the garbage collector happens to run)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")  # LiteLLM's own, at import and use
@pytest.mark.usefixtures("caller_loop")
def test_litellm_structured_output_and_tools(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # its price list, not fetched over the network
    import litellm  # a dev dependency; imported here, as it takes seconds to import

    def replies(request: Request) -> str:
        return '{"city": "Paris", "country": "France"}' if request.params.response_format else weather_call(request)

    url, _ = scripted(serve, replies)
    where = {"model": "openai/cloud", "api_base": url, "api_key": "unused"}
    r = litellm.completion(**where, messages=[{"role": "user", "content": "Capital?"}], response_format=City)
    assert City.model_validate_json(r.choices[0].message.content) == City(city="Paris", country="France")
    parameters = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tools = [
        {"type": "function", "function": {"name": "get_weather", "description": "weather", "parameters": parameters}}
    ]
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    r = litellm.completion(**where, messages=ask, tools=tools)
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    chunks = list(litellm.completion(**where, messages=ask, tools=tools, stream=True))
    rebuilt = litellm.stream_chunk_builder(chunks, messages=ask)
    assert json.loads(rebuilt.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}
    result = {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})}
    final = litellm.completion(**where, messages=[*ask, r.choices[0].message.model_dump(), result], tools=tools)
    assert final.choices[0].message.content == "It is 21 C in Paris."


@pytest.mark.slow
def test_langchain_on_the_tiny_real_config(serve: Serve, smollm2_path: str) -> None:
    url = serve(create_app(load_config("tiny"))) + "/v1"
    llm = chat(url, model="edge", temperature=0, max_tokens=48)
    answer = llm.with_structured_output(City, method="json_schema").invoke("What is the capital of France?")
    assert isinstance(answer, City) and answer.city  # the grammar keeps SmolLM2-135M to the schema
    bound = llm.bind_tools([get_weather], tool_choice="get_weather")
    ai = bound.invoke("What is the weather in Paris?")
    (call,) = ai.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"].get("city"), str)
    final = llm.bind_tools([get_weather]).invoke(
        [
            HumanMessage("What is the weather in Paris?"),
            ai,
            ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]),
        ]
    )
    assert final.content or final.tool_calls
