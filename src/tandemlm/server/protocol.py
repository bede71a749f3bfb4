"""Wire types of the gateway: OpenAI's chat and text completion requests, and tandem's logprobs extension.

Requests are strict (`extra="forbid"`): a parameter tandem does not implement is a 400 that names
it, never silently ignored. Responses are built as plain dicts, in OpenAI's shapes.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from tandemlm.errors import ValidationError
from tandemlm.types import Completion, GenerationParams, Message, Request

DEFAULT_MAX_TOKENS = 512
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


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def to_message(self) -> Message:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return Message("system" if self.role == "developer" else self.role, text)


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
    n: int = Field(1, ge=1, le=1, description="only one choice per request")
    user: str | None = Field(None, description="accepted for compatibility; not sent to any model")
    frequency_penalty: float = Field(0.0, ge=0, le=0, description="only 0 (no penalty) is supported")
    presence_penalty: float = Field(0.0, ge=0, le=0, description="only 0 (no penalty) is supported")

    def params(self, max_tokens: int | None) -> GenerationParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return GenerationParams(
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=stop,
            seed=self.seed,
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = Field(False, description="per-token logprobs of the answer are not available yet")

    def to_request(self) -> Request:
        if self.logprobs:
            raise ValidationError("logprobs are not available on chat completions yet; use /v1/tandem/logprobs")
        return Request(
            tuple(m.to_message() for m in self.messages), self.params(self.max_completion_tokens or self.max_tokens)
        )


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool = Field(False, description="only false is supported")
    logprobs: int | None = Field(None, description="not supported")

    def to_request(self) -> Request:
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if not prompts or prompts == [""]:
            raise ValidationError("prompt is empty: send the text to complete")
        if len(prompts) != 1:
            raise ValidationError("prompt must be one string (batches of prompts are not supported)")
        if self.echo or self.logprobs is not None:
            raise ValidationError("echo and logprobs are not supported on /v1/completions")
        return Request((Message("user", prompts[0]),), self.params(self.max_tokens), raw=True)


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
    prefix: str, kind: str, request_id: str, pipeline: str, created: int, choice: dict[str, Any]
) -> dict[str, Any]:
    return {"id": f"{prefix}-{request_id}", "object": kind, "created": created, "model": pipeline, "choices": [choice]}


def chat_response(c: Completion, request_id: str, pipeline: str, created: int) -> dict[str, Any]:
    message = {"role": "assistant", "content": c.text}
    choice = {"index": 0, "message": message, "finish_reason": c.finish_reason, "logprobs": None}
    envelope = _envelope("chatcmpl", "chat.completion", request_id, pipeline, created, choice)
    return {**envelope, "usage": usage(c), "tandem": tandem_extension(c, request_id)}


def text_response(c: Completion, request_id: str, pipeline: str, created: int) -> dict[str, Any]:
    choice = {"index": 0, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None}
    envelope = _envelope("cmpl", "text_completion", request_id, pipeline, created, choice)
    return {**envelope, "usage": usage(c), "tandem": tandem_extension(c, request_id)}


def chat_chunk(
    request_id: str, pipeline: str, created: int, delta: dict[str, str], finish: str | None
) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
    return _envelope("chatcmpl", "chat.completion.chunk", request_id, pipeline, created, choice)


def text_chunk(request_id: str, pipeline: str, created: int, text: str, finish: str | None) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
    return _envelope("cmpl", "text_completion", request_id, pipeline, created, choice)


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
    }


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None
               ) -> dict[str, Any]:  # fmt: skip
    return {"error": {"message": _utf8(message), "type": kind, "param": param and _utf8(param), "code": code}}


def _utf8(text: str) -> str:
    """Escape lone surrogates: one echoed from the request (a key, a name) would make the error unencodable too."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def now() -> int:
    return int(time.time())
