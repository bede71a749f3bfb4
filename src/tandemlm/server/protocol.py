"""Wire types of the gateway: OpenAI's chat and text completion requests, and tandem's logprobs extension.

Requests are strict (`extra="forbid"`): a parameter tandem does not implement is a 400 that names
it, never silently ignored. Responses are built as plain dicts, in OpenAI's shapes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from tandemlm.errors import ValidationError
from tandemlm.types import (
    Completion,
    GenerationParams,
    Message,
    Request,
    ResponseFormat,
    TokenLogprob,
    Tool,
    ToolCall,
)

DEFAULT_MAX_TOKENS = 512
MAX_CHOICES = 16
ARGUMENT_FRAGMENT = 32  # characters of a tool call's arguments per streamed chunk
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _encodable(cls, value: Any) -> Any:
        """JSON's `"\\ud800"` decodes to a lone surrogate, which no model, log or response can encode: refuse it."""
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            text = item.text if isinstance(item, TextPart) else item
            if isinstance(text, str) and (bad := _SURROGATE.search(text)):
                where = f"item {i}, " if isinstance(value, list) else ""
                raise PydanticCustomError(
                    "lone_surrogate",
                    "contains a lone surrogate ({char}) at {where}character {at}; send valid UTF-8 text",
                    {"char": f"\\u{ord(bad.group()):04x}", "where": where, "at": bad.start()},
                )
        return value


class TextPart(BaseModel):
    """A content part. The message holding it checks its text: an error raised in here would be reported once
    per branch of `str | list[TextPart]`, burying the useful one."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class FunctionCallWire(_Wire):
    name: str
    arguments: str


class ToolCallWire(_Wire):
    id: str = Field(max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCallWire


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(None, description="accepted for compatibility; not sent to any model")
    tool_calls: list[ToolCallWire] | None = None
    tool_call_id: str | None = Field(None, max_length=256)

    def to_message(self) -> Message:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValidationError(
                f"a {self.role} message needs content (only an assistant turn with tool_calls may omit it)"
            )
        content = self.content or ""
        text = content if isinstance(content, str) else "".join(p.text for p in content)
        calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in self.tool_calls or ())
        return Message("system" if self.role == "developer" else self.role, text, calls, self.tool_call_id)


class FunctionWire(_Wire):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = Field(None, description="accepted; arguments are always checked against the parameters")


class ToolWire(_Wire):
    type: Literal["function"]
    function: FunctionWire

    def to_tool(self) -> Tool:
        f = self.function
        parameters = f.parameters if f.parameters is not None else {"type": "object", "properties": {}}
        return Tool(f.name, f.description or "", json.dumps(parameters))


class NamedFunction(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaWire(_Wire):
    name: str = "response"
    description: str | None = None
    json_schema: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormatWire(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaWire | None = None

    def to_format(self) -> ResponseFormat | None:
        if self.type == "text":
            return None
        if self.type == "json_object":
            return ResponseFormat("json_object")
        if self.json_schema is None:
            raise ValidationError("response_format of type json_schema needs its json_schema")
        js = self.json_schema
        return ResponseFormat("json_schema", json.dumps(js.json_schema), js.name, bool(js.strict))


class StreamOptions(_Wire):
    include_usage: bool = False


class _Sampling(_Wire):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=MAX_CHOICES, description="choices: separate runs (one, copied, when greedy)")
    user: str | None = Field(None, description="accepted for compatibility; not sent to any model")
    metadata: dict[str, str] | None = Field(None, description="accepted for compatibility; not sent to any model")
    frequency_penalty: float = Field(0.0, ge=0, le=0, description="only 0 (no penalty) is supported")
    presence_penalty: float = Field(0.0, ge=0, le=0, description="only 0 (no penalty) is supported")

    def params(self, max_tokens: int | None, **shape: Any) -> GenerationParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return GenerationParams(
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=stop,
            seed=self.seed,
            **shape,
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormatWire | None = None
    tools: list[ToolWire] | None = Field(None, min_length=1)
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None

    def to_request(self) -> Request:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValidationError("top_logprobs needs logprobs: true")
        tools = tuple(t.to_tool() for t in self.tools or ())
        choice = self.tool_choice
        params = self.params(
            self.max_completion_tokens or self.max_tokens,
            response_format=self.response_format.to_format() if self.response_format is not None else None,
            logprobs=(self.top_logprobs or 0) if self.logprobs else None,
            tools=tools,
            tool_choice=choice.function.name if isinstance(choice, NamedToolChoice) else choice or "auto",
            parallel_tool_calls=self.parallel_tool_calls is not False,
        )
        return Request(tuple(m.to_message() for m in self.messages), params)


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool = Field(False, description="only false is supported")
    logprobs: int | None = Field(None, ge=0, le=5)

    def to_request(self) -> Request:
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if not prompts or prompts == [""]:
            raise ValidationError("prompt is empty: send the text to complete")
        if len(prompts) != 1:
            raise ValidationError("prompt must be one string (batches of prompts are not supported)")
        if self.echo:
            raise ValidationError("echo is not supported on /v1/completions")
        return Request((Message("user", prompts[0]),), self.params(self.max_tokens, logprobs=self.logprobs), raw=True)


class LogprobsRequest(_Wire):
    """tandem's extension: next-token distributions after given token positions, with KV reuse per session.

    The sequence is the session's first `offset` tokens followed by `tokens`; only new tokens need be sent.
    `positions` are absolute indices into that sequence (default: the last one).
    """

    model: str
    tokens: list[int]
    session_id: str | None = Field(None, max_length=128)
    offset: int = Field(0, ge=0)
    positions: list[int] | None = None
    top_k: int | None = Field(20, ge=1, description="None returns the full vector")


def _envelope(
    prefix: str, kind: str, request_id: str, pipeline: str, created: int, *choices: dict[str, Any]
) -> dict[str, Any]:
    return {"id": f"{prefix}-{request_id}", "object": kind, "created": created, "model": pipeline,
            "choices": list(choices)}  # fmt: skip


def chat_response(answers: Sequence[Completion], request_id: str, pipeline: str, created: int) -> dict[str, Any]:
    """A chat completion with one choice per answer (`n`); usage and the tandem trace cover them all."""
    choices = [
        {
            "index": i,
            "message": chat_message(c),
            "finish_reason": c.finish_reason,
            "logprobs": chat_logprobs(c.logprobs),
        }
        for i, c in enumerate(answers)
    ]
    envelope = _envelope("chatcmpl", "chat.completion", request_id, pipeline, created, *choices)
    c = combined(answers)
    return {**envelope, "usage": usage(c), "tandem": tandem_extension(c, request_id)}


def text_response(answers: Sequence[Completion], request_id: str, pipeline: str, created: int) -> dict[str, Any]:
    choices = [
        {"index": i, "text": c.text, "finish_reason": c.finish_reason, "logprobs": text_logprobs(c.logprobs)}
        for i, c in enumerate(answers)
    ]
    envelope = _envelope("cmpl", "text_completion", request_id, pipeline, created, *choices)
    c = combined(answers)
    return {**envelope, "usage": usage(c), "tandem": tandem_extension(c, request_id)}


def chat_message(c: Completion) -> dict[str, Any]:
    """The assistant message of an answer: content null when it only calls tools, as OpenAI's."""
    if not c.tool_calls:
        return {"role": "assistant", "content": c.text}
    calls = [
        {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}} for t in c.tool_calls
    ]
    return {"role": "assistant", "content": c.text or None, "tool_calls": calls}


def combined(answers: Sequence[Completion]) -> Completion:
    """One completion standing for several choices: the prompt counted once, every distinct run's answer tokens,
    cost and trace (copies of one greedy run count once)."""
    runs = list({id(c): c for c in answers}.values())
    first = runs[0]
    if len(runs) == 1:
        return first
    tokens = sum(c.usage.completion_tokens for c in runs)
    return Completion(first.text, first.finish_reason, type(first.usage)(first.usage.prompt_tokens, tokens),
                      first.model, tuple(e for c in runs for e in c.trace), first.decision,
                      extensions=first.extensions)  # fmt: skip


def _entry(e: TokenLogprob) -> dict[str, Any]:
    return {"token": e.token, "logprob": e.logprob, "bytes": list(e.bytes)}


def chat_logprobs(entries: Sequence[TokenLogprob] | None) -> dict[str, Any] | None:
    """OpenAI's chat `logprobs` object."""
    if entries is None:
        return None
    return {"content": [{**_entry(e), "top_logprobs": [_entry(t) for t in e.top]} for e in entries], "refusal": None}


def text_logprobs(entries: Sequence[TokenLogprob] | None, offset: int = 0) -> dict[str, Any] | None:
    """The legacy completions `logprobs` object (parallel lists; text offsets from `offset`)."""
    if entries is None:
        return None
    offsets, at = [], offset
    for e in entries:
        offsets.append(at)
        at += len(e.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [{t.token: t.logprob for t in e.top} for e in entries],
        "text_offset": offsets,
    }


def chat_chunk(
    request_id: str, pipeline: str, created: int, delta: dict[str, Any], finish: str | None, *, index: int = 0,
    logprobs: Sequence[TokenLogprob] = (),
) -> dict[str, Any]:  # fmt: skip
    choice = {"index": index, "delta": delta, "finish_reason": finish,
              "logprobs": chat_logprobs(logprobs) if logprobs else None}  # fmt: skip
    return _envelope("chatcmpl", "chat.completion.chunk", request_id, pipeline, created, choice)


def text_chunk(
    request_id: str, pipeline: str, created: int, text: str, finish: str | None, *, index: int = 0,
    logprobs: Sequence[TokenLogprob] = (),
) -> dict[str, Any]:  # fmt: skip
    choice = {"index": index, "text": text, "finish_reason": finish,
              "logprobs": text_logprobs(logprobs) if logprobs else None}  # fmt: skip
    return _envelope("cmpl", "text_completion", request_id, pipeline, created, choice)


def tool_call_deltas(c: Completion) -> list[dict[str, Any]]:
    """An answer's tool calls as OpenAI streams them: per call a delta with its index, id and name, then its
    arguments in fragments (each a `delta.tool_calls` entry; a client concatenates them by index)."""
    out: list[dict[str, Any]] = []
    for i, call in enumerate(c.tool_calls):
        head = {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        out.append({"tool_calls": [head]})
        args = call.arguments
        out += [
            {"tool_calls": [{"index": i, "function": {"arguments": args[at : at + ARGUMENT_FRAGMENT]}}]}
            for at in range(0, len(args), ARGUMENT_FRAGMENT)
        ]
    return out


def usage(c: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": c.usage.prompt_tokens,
        "completion_tokens": c.usage.completion_tokens,
        "total_tokens": c.usage.total_tokens,
    }


def tandem_extension(c: Completion, request_id: str) -> dict[str, Any]:
    """The compact trace: per call usage, cost and location, and the path the strategy took (no egress text)."""
    return {
        "request_id": request_id,
        "cost_usd": c.cost_usd,
        "decision": c.decision,
        "egress_chars": sum(len(t) for t in c.egress),
        "calls": [
            {
                "model": e.model,
                "location": e.location,
                "role": e.role,
                "prompt_tokens": e.usage.prompt_tokens,
                "completion_tokens": e.usage.completion_tokens,
                "latency_ms": round(e.latency_s * 1000, 3),
                "cost_usd": e.cost_usd,
                **({"decision": e.decision} if e.decision else {}),
                **({"error": e.error} if e.error else {}),
            }
            for e in c.trace
        ],
        **c.extensions,
    }


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None
               ) -> dict[str, Any]:  # fmt: skip
    return {"error": {"message": _utf8(message), "type": kind, "param": param and _utf8(param), "code": code}}


def _utf8(text: str) -> str:
    """Escape lone surrogates: one echoed from the request (a key, a name) would make the error unencodable too."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def now() -> int:
    return int(time.time())
