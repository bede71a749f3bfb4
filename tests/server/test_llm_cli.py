"""The `llm` CLI (simonw/llm) against the gateway, as its users configure an OpenAI-compatible server: a model in
`extra-openai-models.yaml` with `api_base`, `supports_schema` and `supports_tools`, in a temporary
`LLM_USER_PATH`. Plain and streamed prompts, `--schema` (the answer validated against it) and `--functions`
tools with the round trip llm runs itself (the call, its result sent back, the final answer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI

from tandemlm import Request, Runtime, ScriptedModel
from tandemlm.config import load_config, parse_config
from tandemlm.server import create_app
from tandemlm.structured import schema_violation

llm_cli = pytest.importorskip("llm.cli")
from click.testing import CliRunner  # noqa: E402

Serve = Callable[[FastAPI], str]
CONFIG = """
models:
  m: {engine: scripted, location: cloud}
pipelines:
  cloud: {model: m}
"""
WEATHER = '''
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return '{"city": "' + city + '", "temp_c": 21}'
'''
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}


def weather_call(request: Request) -> str:
    """Calls get_weather for Paris, then answers from the tool's result."""
    if request.messages[-1].role == "tool":
        return "It is " + str(json.loads(request.messages[-1].content)["temp_c"]) + " C in Paris."
    return '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def replies(request: Request) -> str:
    if request.params.response_format is not None:
        return '{"city": "Paris", "country": "France"}'
    if request.params.tools:
        return weather_call(request)
    return "Hello from tandem."


def configure(home: Path, url: str, pipelines: list[str]) -> dict[str, str]:
    """An llm user directory naming the gateway's pipelines as OpenAI-compatible models (`tandem-<pipeline>`)."""
    models = [
        {"model_id": f"tandem-{p}", "model_name": p, "api_base": url, "supports_schema": True, "supports_tools": True}
        for p in pipelines
    ]
    (home / "extra-openai-models.yaml").write_text(yaml.safe_dump(models), encoding="utf-8")
    return {"LLM_USER_PATH": str(home), "OPENAI_API_KEY": "unused"}


def llm(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(llm_cli.cli, ["prompt", "--no-log", *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def scripted(serve: Serve, tmp_path: Path) -> tuple[dict[str, str], ScriptedModel]:
    model = ScriptedModel(replies, name="m", location="cloud")
    url = serve(create_app(Runtime(parse_config(CONFIG), models={"m": model}))) + "/v1"
    return configure(tmp_path, url, ["cloud"]), model


def test_the_gateways_pipelines_are_llm_models(scripted: tuple[dict[str, str], ScriptedModel]) -> None:
    env, _ = scripted
    result = CliRunner().invoke(llm_cli.cli, ["models", "list"], env=env, catch_exceptions=False)
    assert "tandem-cloud" in result.output


@pytest.mark.parametrize("stream", [False, True])
def test_llm_prompt_plain_and_streamed(scripted: tuple[dict[str, str], ScriptedModel], stream: bool) -> None:
    env, model = scripted
    out = llm(env, "-m", "tandem-cloud", *([] if stream else ["--no-stream"]), "-o", "max_tokens", "20", "Hi")
    assert out.strip() == "Hello from tandem."
    (seen,) = model.requests
    assert seen.messages[-1].content == "Hi" and seen.params.max_tokens == 20


@pytest.mark.parametrize("stream", [False, True])
def test_llm_schema(scripted: tuple[dict[str, str], ScriptedModel], stream: bool) -> None:
    env, model = scripted
    out = llm(env, "-m", "tandem-cloud", *([] if stream else ["--no-stream"]), "--schema", "city, country", "Paris?")
    assert json.loads(out) == {"city": "Paris", "country": "France"}
    rf = model.requests[0].params.response_format
    assert (
        rf is not None and rf.type == "json_schema" and json.loads(rf.schema or "")["required"] == ["city", "country"]
    )


@pytest.mark.parametrize("stream", [False, True])
def test_llm_functions_round_trip(scripted: tuple[dict[str, str], ScriptedModel], stream: bool) -> None:
    env, model = scripted
    out = llm(env, "-m", "tandem-cloud", *([] if stream else ["--no-stream"]), "--functions", WEATHER, "Weather?")
    assert out.strip() == "It is 21 C in Paris."
    first, second = model.requests
    assert [t.name for t in first.params.tools] == ["get_weather"]
    call = second.messages[1].tool_calls[0]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert second.messages[2].role == "tool" and second.messages[2].tool_call_id == call.id
    assert json.loads(second.messages[2].content) == {"city": "Paris", "temp_c": 21}


@pytest.mark.slow
def test_llm_on_the_tiny_real_config(serve: Serve, smollm2_path: str, tmp_path: Path) -> None:
    env = configure(tmp_path, serve(create_app(load_config("tiny"))) + "/v1", ["edge", "speculative"])
    assert llm(env, "-m", "tandem-edge", "-o", "temperature", "0", "-o", "max_tokens", "8", "Say hello.").strip()
    schema = json.dumps(CITY)
    for model, stream in (("tandem-edge", []), ("tandem-speculative", ["--no-stream"])):
        options = ["-o", "temperature", "0", "-o", "max_tokens", "48", *stream]
        out = llm(env, "-m", model, *options, "--schema", schema, "What is the capital of France?")
        assert schema_violation(json.loads(out), schema) is None, out  # the grammar keeps SmolLM2-135M to it
    out = llm(env, "-m", "tandem-edge", "-o", "max_tokens", "48", "--functions", WEATHER, "Weather in Paris?")
    assert out.strip()  # the small model may call the tool or answer; either way llm completes its chain
