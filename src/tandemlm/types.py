"""Value types shared by every layer: messages, requests, completions, usage, log-probabilities, trace events.

All are frozen dataclasses; pydantic appears only at the edges (config files, HTTP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from tandemlm.errors import ValidationError

Role = Literal["system", "user", "assistant"]
Location = Literal["edge", "cloud"]
FinishReason = Literal["stop", "length"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValidationError(f"message role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not isinstance(self.content, str):
            raise ValidationError(f"message content must be a string, got {type(self.content).__name__}")


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters. temperature 0 means greedy decoding."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValidationError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValidationError(f"temperature must be in [0, 2], got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValidationError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValidationError("stop sequences must be non-empty strings")


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

    @classmethod
    def completion(cls, prompt: str, **params: object) -> Request:
        """A raw text completion of `prompt`, without chat template."""
        return replace(cls.of(prompt, **params), raw=True)

    @classmethod
    def of(cls, prompt: str | Sequence[Message], **params: object) -> Request:
        """Build a request from a user prompt (or messages) and keyword sampling parameters."""
        messages = (Message("user", prompt),) if isinstance(prompt, str) else tuple(prompt)
        if "stop" in params and params["stop"] is not None:
            params["stop"] = tuple(params["stop"])  # type: ignore[arg-type]
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
class Completion:
    """The answer to a request, with the trace of every model call made to produce it."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str
    trace: tuple[TraceEvent, ...] = ()
    decision: str | None = None  # which path a strategy took, and why

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
            "trace": [e.to_dict() for e in self.trace],
            "egress": list(self.egress),
        }


@dataclass(frozen=True)
class Chunk:
    """A piece of a streamed answer. The last chunk carries the finish reason and the full completion."""

    text: str
    finish_reason: FinishReason | None = None
    completion: Completion | None = None


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
        return float(-np.sum(np.where(p > 0, p * self.values, 0.0)))
