"""Structured output: JSON Schema checks of answers and tool calls, and the grammars local engines decode under.

A local engine decodes under a GBNF grammar compiled from the schema (llama.cpp's JSON-schema converter, as
shipped with llama-cpp-python), so its answer parses and validates by construction; a remote engine gets the
parameter passed through. Every finished answer is checked here either way (`problem`): the base class retries
a model that cannot constrain its own decoding once, then fails with `InvalidOutputError` (the gateway's 502).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from tandemlm.errors import ValidationError, missing_extra

if TYPE_CHECKING:
    from tandemlm.types import Completion, GenerationParams, ResponseFormat, Tool

#: keywords a JSON Schema may hold that llama.cpp's grammar converter does not enforce (the check still does)
UNENFORCED = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minProperties", "maxProperties",
    "uniqueItems", "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "patternProperties",
    "contains", "propertyNames",
)  # fmt: skip


def check_schema(schema: dict[str, Any], where: str) -> None:
    """Refuse a schema that is not valid JSON Schema (the error names `where` and what is wrong)."""
    from jsonschema import SchemaError, validators

    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as err:
        at = "/".join(str(p) for p in err.absolute_path)
        raise ValidationError(f"{where}: not a valid JSON Schema{f' at {at}' if at else ''}: {err.message}") from err


@cache
def _validator(schema: str) -> Any:
    from jsonschema import validators

    loaded = json.loads(schema)
    return validators.validator_for(loaded)(loaded)


def schema_violation(value: object, schema: str) -> str | None:
    """The first way `value` breaks `schema` (JSON text), or None when it is valid."""
    error = next(iter(_validator(schema).iter_errors(value)), None)
    if error is None:
        return None
    at = "".join(f"[{p!r}]" for p in error.absolute_path) or "the top level"
    return f"at {at}: {error.message}"


def unenforced(schema: object) -> list[str]:
    """The keywords in a schema that grammar-constrained decoding cannot enforce (to say so in an error)."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            found.update(k for k in node if k in UNENFORCED)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return sorted(found)


def problem(params: GenerationParams, completion: Completion) -> str | None:
    """Why a finished answer breaks the request's response_format or tools; None when it keeps them. An answer cut
    by max_tokens (finish reason "length") is returned as is, as OpenAI does, and not checked."""
    from tandemlm.types import TOOL_CHOICES

    if completion.finish_reason == "length":
        return None
    choice = params.tool_choice
    if completion.tool_calls:
        if not params.calls_tools:
            return "the answer calls tools, but the request gave none or set tool_choice to none"
        if choice not in TOOL_CHOICES and any(c.name != choice for c in completion.tool_calls):
            return f"tool_choice names {choice!r}, but the answer calls {[c.name for c in completion.tool_calls]}"
        if not params.parallel_tool_calls and len(completion.tool_calls) > 1:
            return f"parallel_tool_calls is false, but the answer makes {len(completion.tool_calls)} calls"
        tools = {t.name: t for t in params.tools}
        for call in completion.tool_calls:
            if call.name not in tools:
                return f"the answer calls {call.name!r}, which is not one of the tools ({', '.join(tools)})"
            try:
                arguments = json.loads(call.arguments)
            except ValueError as err:
                return f"the arguments of the call to {call.name} are not valid JSON ({err}): {call.arguments[:200]!r}"
            if (why := schema_violation(arguments, tools[call.name].parameters)) is not None:
                return f"the arguments of the call to {call.name} break its parameters' schema {why}"
        return None
    if choice != "auto" and choice != "none" and params.tools:
        return f"tool_choice is {choice!r}, but the answer calls no tool"
    rf = params.response_format
    if rf is None:
        return None
    try:
        value = json.loads(completion.text)
    except ValueError as err:
        return f"the answer is not valid JSON ({err}): {completion.text[:200]!r}"
    if rf.type == "json_object":
        return None if isinstance(value, dict) else f"the answer is JSON but not an object: {completion.text[:200]!r}"
    assert rf.schema is not None
    why = schema_violation(value, rf.schema)
    return None if why is None else f"the answer breaks the response_format schema {why}"


# ---- grammars (llama.cpp's GBNF) -------------------------------------------------------------------------------


def _converter() -> Any:
    try:
        from llama_cpp import llama_grammar
    except ImportError:
        raise missing_extra("llama-cpp-python", "llamacpp") from None
    return llama_grammar


# llama-cpp-python 0.3.36's converter lets a string hold raw control characters (a newline), which JSON forbids:
# its rules for a string's characters and for a pattern's "." are tightened to what JSON allows
_LOOSE_RULES = (
    ('char ::= [^"\\\\] |', 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'),
    ("dot ::= [^\\x0A\\x0D]", 'dot ::= [^"\\\\\\x7F\\x00-\\x1F]'),
)


@cache
def _schema_grammar(schema: str, prop_order: tuple[str, ...] = ()) -> str:
    try:
        grammar: str = _converter().json_schema_to_gbnf(schema, list(prop_order))
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as err:
        raise ValidationError(f"this JSON Schema cannot be compiled into a decoding grammar: {err!r}") from err
    for loose, tight in _LOOSE_RULES:
        grammar = grammar.replace(loose, tight)
    return grammar


def response_grammar(rf: ResponseFormat) -> str:
    """The GBNF grammar of an answer in this format: any JSON object, or JSON valid under the schema."""
    if rf.schema is None:
        json_gbnf: str = _converter().JSON_GBNF
        return json_gbnf
    return _schema_grammar(rf.schema)


def call_grammar(tools: Sequence[Tool], only: str | None = None) -> str:
    """The GBNF grammar of one call object, `{"name": ..., "arguments": {...}}`, for any of `tools` (or the one
    named `only`): the name comes first, and the arguments are valid under that function's schema."""
    alternatives = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.schema},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
        if only is None or t.name == only
    ]
    if not alternatives:
        raise ValidationError(f"no tool named {only!r}")
    schema = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
    return _schema_grammar(json.dumps(schema, sort_keys=True), ("name", "arguments"))
