"""Value types shared by every layer: messages, requests, completions, usage, log-probabilities, trace events.

All are frozen dataclasses; pydantic appears only at the edges (config files, HTTP).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from tandemlm.errors import ValidationError

Role = Literal["system", "user", "assistant", "tool"]
Location = Literal["edge", "cloud"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]  # content_filter: a guard cut it
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
TOOL_CHOICES: tuple[str, ...] = ("auto", "none", "required")
#: request features beyond plain text, by their OpenAI parameter names (see `Request.features`)
FEATURES: frozenset[str] = frozenset({"response_format", "logprobs", "tools"})
#: OpenAI's rule for function names; it also keeps a name from carrying a chat template's control tokens
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_function_name(name: object) -> None:
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        raise ValidationError(f"a function name is 1-64 letters, digits, '_' or '-', got {name!r}")


def _json_object(text: object, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError as err:
        raise ValidationError(f"{what} must be a JSON object, got {str(text)[:200]!r}: {err}") from err
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object, got {str(text)[:200]!r}")
    return value


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asks for. `arguments` is a JSON object as text, OpenAI's wire form (a model may
    write invalid JSON there; the base class checks it against the function's schema)."""

    id: str
    name: str
    arguments: str

    def __post_init__(self) -> None:
        _check_function_name(self.name)
        if not isinstance(self.arguments, str):
            raise ValidationError(f"tool call arguments must be JSON text, got {type(self.arguments).__name__}")

    @property
    def parsed_arguments(self) -> dict[str, Any]:
        return _json_object(self.arguments, f"the arguments of the call to {self.name}")


@dataclass(frozen=True)
class Message:
    """One chat turn. An assistant turn may ask for `tool_calls` (its content then is often empty); a `tool`
    turn holds the result of the call named by `tool_call_id`."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValidationError(f"message role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not isinstance(self.content, str):
            raise ValidationError(f"message content must be a string, got {type(self.content).__name__}")
        if self.tool_calls and self.role != "assistant":
            raise ValidationError(f"only assistant messages carry tool_calls, not {self.role} messages")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValidationError("a tool message needs the tool_call_id it answers, and only tool messages have one")

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's wire form of the message (content null on an assistant turn that only calls tools)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["content"] = self.content or None
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and its parameters' JSON Schema (JSON text)."""

    name: str
    description: str = ""
    parameters: str = '{"type": "object", "properties": {}}'

    def __post_init__(self) -> None:
        _check_function_name(self.name)
        from tandemlm.structured import check_schema

        check_schema(_json_object(self.parameters, f"the parameters of function {self.name}"), f"function {self.name}")

    @property
    def schema(self) -> dict[str, Any]:
        return _json_object(self.parameters, f"the parameters of function {self.name}")

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's wire form of the tool."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.schema},
        }


@dataclass(frozen=True)
class ResponseFormat:
    """Structured output: any JSON object (`json_object`), or JSON valid under `schema` (`json_schema`, JSON text).
    Local engines decode under a grammar compiled from it; every answer is checked against it."""

    type: Literal["json_object", "json_schema"]
    schema: str | None = None
    name: str = "response"
    strict: bool = True

    def __post_init__(self) -> None:
        if self.type not in ("json_object", "json_schema"):
            raise ValidationError(f"response_format type must be json_object or json_schema, got {self.type!r}")
        if (self.type == "json_schema") != (self.schema is not None):
            raise ValidationError("a json_schema response_format needs its schema, and json_object takes none")
        if self.schema is not None:
            from tandemlm.structured import check_schema

            check_schema(_json_object(self.schema, "response_format.json_schema.schema"), "response_format")

    @property
    def schema_dict(self) -> dict[str, Any] | None:
        return None if self.schema is None else _json_object(self.schema, "response_format.json_schema.schema")


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters and what shapes the answer. temperature 0 means greedy decoding.

    response_format: structured output (JSON, or JSON under a schema). logprobs: None for none, k >= 0 for the
    chosen token's log-probability and the k most likely alternatives at each step. tools / tool_choice
    ("auto", "none", "required" or a function name) / parallel_tool_calls: as OpenAI's. They live here, with the
    sampling, so that a strategy handing a request to its children hands them the constraint too.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    response_format: ResponseFormat | None = None
    logprobs: int | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"
    parallel_tool_calls: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValidationError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValidationError(f"temperature must be in [0, 2], got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValidationError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValidationError("stop sequences must be non-empty strings")
        if self.logprobs is not None and not (isinstance(self.logprobs, int) and 0 <= self.logprobs <= 20):
            raise ValidationError(f"logprobs (top alternatives) must be an integer in [0, 20], got {self.logprobs!r}")
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValidationError(f"tool names must be unique, got {names}")
        if self.tool_choice not in TOOL_CHOICES and self.tool_choice not in names:
            raise ValidationError(
                "tool_choice must be auto, none, required or the name of a given tool "
                f"({', '.join(names) or 'none given'}), got {self.tool_choice!r}"
            )
        if self.tool_choice == "required" and not self.tools:
            raise ValidationError("tool_choice 'required' needs tools")

    @property
    def calls_tools(self) -> bool:
        """Whether the answer may be a tool call (tools given, and tool_choice is not none)."""
        return bool(self.tools) and self.tool_choice != "none"


@dataclass(frozen=True)
class Request:
    """A chat request: the messages and how to sample the answer.

    `raw` marks a plain text completion (OpenAI's /v1/completions): one user message whose content
    the model continues verbatim, with no chat template.
    """

    messages: tuple[Message, ...]
    params: GenerationParams = field(default_factory=GenerationParams)
    raw: bool = False

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValidationError("a request needs at least one message")
        if not all(isinstance(m, Message) for m in self.messages):
            raise ValidationError("request messages must be Message objects")
        if self.raw and (len(self.messages) != 1 or self.messages[0].role != "user"):
            raise ValidationError("a raw completion request holds exactly one user message: the prompt")
        if self.raw and (self.params.tools or self.params.response_format is not None):
            raise ValidationError("tools and response_format need a chat request, not a raw text completion")

    @property
    def features(self) -> frozenset[str]:
        """The request's wants beyond plain text, by their OpenAI parameter names: what a model must support."""
        p = self.params
        used = {"response_format"} if p.response_format is not None else set()
        if p.logprobs is not None:
            used.add("logprobs")
        if p.tools or any(m.tool_calls or m.role == "tool" for m in self.messages):
            used.add("tools")
        return frozenset(used)

    @classmethod
    def completion(cls, prompt: str, **params: object) -> Request:
        """A raw text completion of `prompt`, without chat template."""
        return replace(cls.of(prompt, **params), raw=True)

    @classmethod
    def of(cls, prompt: str | Sequence[Message], **params: object) -> Request:
        """Build a request from a user prompt (or messages) and keyword sampling parameters."""
        messages = (Message("user", prompt),) if isinstance(prompt, str) else tuple(prompt)
        for key in ("stop", "tools"):
            if params.get(key) is not None:
                params[key] = tuple(params[key])  # type: ignore[arg-type]
        return cls(messages, GenerationParams(**params))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Usage:
    """Token counts of one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class Price:
    """USD per one million input and output tokens; zero for edge models."""

    input: float = 0.0
    output: float = 0.0

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.input + usage.completion_tokens * self.output) / 1_000_000


@dataclass(frozen=True)
class TraceEvent:
    """One model call: who answered, where, in which role, at what cost, and what left the device.

    `egress` holds the exact text sent to a cloud model (None for edge calls): the egress ledger.
    """

    model: str
    location: Location
    operation: str
    role: str
    usage: Usage
    latency_s: float
    cost_usd: float
    egress: str | None = None
    decision: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "location": self.location,
            "operation": self.operation,
            "role": self.role,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "latency_s": round(self.latency_s, 6),
            "cost_usd": self.cost_usd,
            "egress": self.egress,
            "decision": self.decision,
            "error": self.error,
        }


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, log-probability and bytes, with the most likely alternatives (`top`)."""

    token: str
    logprob: float
    bytes: bytes
    top: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Completion:
    """The answer to a request, with the trace of every model call made to produce it. An answer that calls
    tools has them in `tool_calls` (finish reason "tool_calls"); `logprobs` when the request asked for them."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str
    trace: tuple[TraceEvent, ...] = ()
    decision: str | None = None  # which path a strategy took, and why
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] | None = None
    #: what a strategy reports beyond its decision, by key (e.g. "verification": the verdict on each sentence);
    #: the gateway adds it to the response's `tandem` field
    extensions: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def cost_usd(self) -> float:
        return sum(e.cost_usd for e in self.trace)

    @property
    def egress(self) -> tuple[str, ...]:
        """Exact texts that left the device for cloud models while answering."""
        return tuple(e.egress for e in self.trace if e.egress is not None)

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
            },
            "cost_usd": self.cost_usd,
            "decision": self.decision,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls],
            "trace": [e.to_dict() for e in self.trace],
            "egress": list(self.egress),
            **({"extensions": self.extensions} if self.extensions else {}),
        }


@dataclass(frozen=True)
class Chunk:
    """A piece of a streamed answer. The last chunk carries the finish reason and the full completion (and its
    tool calls, which are streamed once whole). `logprobs`: the entries of the tokens behind this piece, where the
    engine gives them piece by piece; the rest come from the final completion."""

    text: str
    finish_reason: FinishReason | None = None
    completion: Completion | None = None
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, eq=False)
class LogProbs:
    """Next-token log-probabilities: a full vector from local engines, the top-k from remote ones.

    `ids` is None when `values` is the dense vector over the whole vocabulary; otherwise `values[i]`
    is the log-probability of token `ids[i]`, sorted from most to least likely.
    """

    vocab_size: int
    values: np.ndarray
    ids: np.ndarray | None = None

    @classmethod
    def from_logits(cls, logits: np.ndarray) -> LogProbs:
        """Normalise raw logits into a dense log-probability vector (log-softmax, in float64)."""
        x = np.asarray(logits, dtype=np.float64)
        m = float(np.max(x))
        values = x - (m + math.log(float(np.sum(np.exp(x - m)))))
        return cls(vocab_size=len(values), values=values)

    @classmethod
    def from_top(cls, vocab_size: int, pairs: Sequence[tuple[int, float]]) -> LogProbs:
        ordered = sorted(pairs, key=lambda p: -p[1])
        ids = np.array([p[0] for p in ordered], dtype=np.int64)
        values = np.array([p[1] for p in ordered], dtype=np.float64)
        return cls(vocab_size=vocab_size, values=values, ids=ids)

    @property
    def complete(self) -> bool:
        return self.ids is None

    def keep_top(self, k: int | None) -> LogProbs:
        """The same distribution cut to its k most likely tokens (unchanged when k is None)."""
        return self if k is None else LogProbs.from_top(self.vocab_size, self.top(k))

    def top(self, k: int) -> list[tuple[int, float]]:
        """The k most likely tokens as (token id, log-probability), most likely first."""
        if self.ids is not None:
            return [(int(i), float(v)) for i, v in zip(self.ids[:k], self.values[:k], strict=True)]
        k = min(k, self.vocab_size)
        idx = np.argpartition(-self.values, k - 1)[:k]
        idx = idx[np.argsort(-self.values[idx], kind="stable")]
        return [(int(i), float(self.values[i])) for i in idx]

    def logprob(self, token_id: int) -> float:
        """Log-probability of one token; -inf for a token outside a top-k list."""
        if self.ids is None:
            return float(self.values[token_id])
        hits = np.nonzero(self.ids == token_id)[0]
        return float(self.values[hits[0]]) if len(hits) else -math.inf

    def dense(self) -> np.ndarray:
        """The full vector; top-k lists fill the unseen tokens with -inf."""
        if self.ids is None:
            return self.values
        out = np.full(self.vocab_size, -np.inf)
        out[self.ids] = self.values
        return out

    def argmax(self) -> int:
        return int(np.argmax(self.values)) if self.ids is None else int(self.ids[0])

    def entropy(self) -> float:
        """Shannon entropy in nats (over the listed tokens for a top-k list)."""
        p = np.exp(self.values)
        return float(-np.sum(p * np.where(p > 0, self.values, 0.0)))  # a token a grammar forbids (-inf) adds 0
