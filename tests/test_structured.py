"""Structured output and tool calls: schema checks, the answer check, grammars, the tool-call text format."""

from __future__ import annotations

import json

import pytest

from tandemlm.errors import ValidationError
from tandemlm.structured import call_grammar, problem, response_grammar, unenforced
from tandemlm.tools import parse_calls, render_calls, with_tool_prompt
from tandemlm.types import Completion, GenerationParams, Message, Request, ResponseFormat, Tool, ToolCall, Usage

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
WEATHER = Tool(
    "get_weather",
    "the weather in a city",
    json.dumps({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
)
TIME = Tool(
    "get_time", "the time in a city", json.dumps({"type": "object", "properties": {"city": {"type": "string"}}})
)


def answer(text: str = "", finish: str = "stop", calls: tuple[ToolCall, ...] = ()) -> Completion:
    return Completion(text, finish, Usage(), "m", tool_calls=calls)  # type: ignore[arg-type]


def schema_params(schema: dict = PERSON) -> GenerationParams:  # type: ignore[type-arg]
    return GenerationParams(response_format=ResponseFormat("json_schema", json.dumps(schema)))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"name": "Ann", "age": 7}', None),
        ('{"name": "Ann"}', "'age' is a required property"),
        ('{"name": "Ann", "age": -1}', "-1 is less than the minimum of 0"),
        ('{"name": "Ann", "age": 7, "x": 1}', "Additional properties"),
        ("Ann is 7", "not valid JSON"),
    ],
)
def test_answers_are_checked_against_the_schema(text: str, why: str | None) -> None:
    found = problem(schema_params(), answer(text))
    assert found is None if why is None else why in str(found)


def test_json_object_wants_an_object_and_a_cut_answer_is_not_checked() -> None:
    params = GenerationParams(response_format=ResponseFormat("json_object"))
    assert problem(params, answer('{"a": [1]}')) is None
    assert "not an object" in str(problem(params, answer("[1, 2]")))
    assert problem(params, answer('{"a": ', finish="length")) is None  # returned as is, as OpenAI does


def test_bad_schemas_and_formats_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="not a valid JSON Schema"):
        ResponseFormat("json_schema", json.dumps({"type": "objekt"}))
    with pytest.raises(ValidationError, match="needs its schema"):
        ResponseFormat("json_schema")
    with pytest.raises(ValidationError, match="function name"):
        Tool("get weather")
    with pytest.raises(ValidationError, match="tool_choice must be"):
        GenerationParams(tools=(WEATHER,), tool_choice="get_time")
    with pytest.raises(ValidationError, match="needs tools"):
        GenerationParams(tool_choice="required")
    with pytest.raises(ValidationError, match="need a chat request"):
        Request.completion("x", tools=[WEATHER])
    with pytest.raises(ValidationError, match="tool_call_id"):
        Message("tool", "21 C")


def test_tool_calls_are_checked_against_choice_and_parameters() -> None:
    params = GenerationParams(tools=(WEATHER, TIME), tool_choice="auto")
    ok = ToolCall("c1", "get_weather", '{"city": "Paris"}')
    assert problem(params, answer(calls=(ok,))) is None
    assert "'city' is a required property" in str(problem(params, answer(calls=(ToolCall("c", "get_weather", "{}"),))))
    assert "not one of the tools" in str(problem(params, answer(calls=(ToolCall("c", "nope", "{}"),))))
    assert "not valid JSON" in str(problem(params, answer(calls=(ToolCall("c", "get_time", "{city"),))))
    single = GenerationParams(tools=(WEATHER, TIME), parallel_tool_calls=False)
    assert "parallel_tool_calls is false" in str(problem(single, answer(calls=(ok, ok))))
    named = GenerationParams(tools=(WEATHER, TIME), tool_choice="get_time")
    assert "tool_choice names 'get_time'" in str(problem(named, answer(calls=(ok,))))
    assert "calls no tool" in str(problem(GenerationParams(tools=(WEATHER,), tool_choice="required"), answer("hi")))
    assert "calls tools" in str(problem(GenerationParams(tools=(WEATHER,), tool_choice="none"), answer(calls=(ok,))))


def test_tool_call_text_round_trips() -> None:
    calls = (ToolCall("a", "get_weather", '{"city": "Paris"}'), ToolCall("b", "get_time", '{"city": "Oslo"}'))
    text, parsed = parse_calls("Let me check.\n" + render_calls(calls))
    assert text == "Let me check."
    assert [(c.name, json.loads(c.arguments)) for c in parsed] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"city": "Oslo"}),
    ]
    assert all(c.id.startswith("call_") for c in parsed)
    assert parse_calls("<tool_call>\nnot json\n</tool_call>") == ("<tool_call>\nnot json\n</tool_call>", ())
    assert parse_calls("plain answer") == ("plain answer", ())


def test_a_template_without_tools_gets_them_as_text() -> None:
    history = (
        Message("system", "Be brief."),
        Message("user", "Weather in Paris?"),
        Message("assistant", "", (ToolCall("c1", "get_weather", '{"city": "Paris"}'),)),
        Message("tool", '{"temp_c": 21}', tool_call_id="c1"),
    )
    out = with_tool_prompt(history, (WEATHER,), "auto")
    assert [m.role for m in out] == ["system", "user", "assistant", "user"]
    assert out[0].content.startswith("Be brief.\n\nYou can call these functions") and '"get_weather"' in out[0].content
    assert out[2].content == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert out[3].content == '<tool_response>\n{"temp_c": 21}\n</tool_response>'
    assert not any(m.tool_calls for m in out)


def test_grammars_compile_from_schemas() -> None:
    pytest.importorskip("llama_cpp")
    rf = ResponseFormat("json_schema", json.dumps(PERSON))
    grammar = response_grammar(rf)
    assert grammar.startswith("age") or "root ::=" in grammar
    assert "root   ::= object" in response_grammar(ResponseFormat("json_object"))
    calls = call_grammar((WEATHER, TIME))
    assert '"\\"get_weather\\""' in calls and '"\\"get_time\\""' in calls
    assert '"\\"get_time\\""' not in call_grammar((WEATHER, TIME), "get_weather")
    assert unenforced(PERSON) == ["minimum"]


def test_string_grammars_keep_control_characters_out_as_json_does() -> None:
    pytest.importorskip("llama_cpp")
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 5}, "b": {"pattern": "^x.y$"}}}
    grammar = response_grammar(ResponseFormat("json_schema", json.dumps(schema)))
    assert 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |' in grammar and 'dot ::= [^"\\\\\\x7F\\x00-\\x1F]' in grammar
