"""Guidance between the pair: one model's output goes into the other's prompt.

- `SuperICL(small, large)` (SuperICL): the small model's prediction and its confidence (option probabilities for
  multiple choice, exp(mean token logprob) otherwise) go into the large model's prompt, which may override it.
- `GuidedCoT(guide, answerer)` (LM-Guided CoT): the guide writes a rationale and the answerer answers from it;
  `style="hint"` is the reverse direction, the large model's short plan or hint guiding the small model's answer.
- `LLMGuided(large, small)` (SynCID-style): the large model writes a task description with worked examples once
  per task key, cached on disk; the small model answers every request of that task with it, so the large
  model's cost is amortised over the requests (the decision reports the amortised cost).

The final stage streams from the answering model; the earlier stages are whole before it starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from tandemlm.collab.base import Strategy, decided, decided_stream
from tandemlm.collab.confidence import option_probs, token_confidence
from tandemlm.collab.prompting import ask, options_of, question, usd
from tandemlm.errors import UnsupportedOperationError, ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.types import Chunk, Completion, Message, Request

PROMPT_LEVEL = (
    "it rewrites the prompt between its models, so response_format, tools and logprobs would reach stages they do "
    "not fit; send this request to a pipeline of one model, a cascade or a router"
)


class PromptLevel(Strategy):
    """A strategy that rewrites prompts between its models: it hands no request feature on (see PROMPT_LEVEL)."""

    carries: frozenset[str] = frozenset()
    not_carried = PROMPT_LEVEL


class Staged(PromptLevel):
    """A strategy whose `prepare` runs the early stages and returns the final stage (model, request, role) with the
    decision; the final stage is then generated, or streamed, by that model."""

    def prepare(self, request: Request) -> tuple[LanguageModel, Request, str, str]:
        raise NotImplementedError

    def _generate(self, request: Request) -> Completion:
        model, final, role, decision = self.prepare(request)
        return decided(model.generate(final, role=role), decision)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        model, final, role, decision = self.prepare(request)
        yield from decided_stream(model.stream(final, role=role), decision)


def capped(request: Request, max_tokens: int) -> Request:
    """The request with at most `max_tokens` to write (an early stage's budget)."""
    return replace(request, params=replace(request.params, max_tokens=min(max_tokens, request.params.max_tokens)))


@dataclass(frozen=True)
class Prediction:
    """A model's answer and how sure it is: `confidence` None when the model cannot give logprobs."""

    answer: str
    confidence: float | None
    how: Literal["options", "logprob"]

    def describe(self) -> str:
        return "unknown" if self.confidence is None else f"{self.confidence:.2f}"


def predict(model: LanguageModel, request: Request, max_tokens: int = 256, *, role: str = "small") -> Prediction:
    """A model's prediction: the most likely option letter by option probabilities on a multiple-choice prompt
    (one pass, no decoding), else its greedy answer with exp(mean token logprob)."""
    options = options_of(question(request))
    if options:
        try:
            probs = option_probs(model, request, options)
        except UnsupportedOperationError:
            pass
        else:
            best = max(probs, key=lambda k: probs[k])
            return Prediction(best, probs[best], "options")
    answer = model.generate(capped(request, max_tokens), role=role).text
    try:
        confidence: float | None = math.exp(token_confidence(model, request, answer).mean_logprob)
    except UnsupportedOperationError:
        confidence = None
    return Prediction(answer.strip(), confidence, "logprob")


def _short(text: str, n: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


class SuperICL(Staged):
    """The large model answers with the small model's prediction and confidence in its prompt (SuperICL)."""

    def __init__(
        self, small: LanguageModel, large: LanguageModel, *, small_tokens: int = 256, name: str | None = None
    ) -> None:
        super().__init__(name or f"super_icl({small.name}->{large.name})", (small, large))
        self.small, self.large, self.small_tokens = small, large, small_tokens

    def prepare(self, request: Request) -> tuple[LanguageModel, Request, str, str]:
        pred = predict(self.small, request, self.small_tokens)
        final = ask(request, "super_icl", prediction=pred.answer, confidence=pred.describe())
        why = f"super_icl: small predicted {_short(pred.answer)!r} ({pred.how} confidence {pred.describe()})"
        return self.large, final, "large", why


class GuidedCoT(Staged):
    """The guide writes a rationale (`style="rationale"`, LM-Guided CoT: small guide, large answerer) or a short plan
    or hint (`style="hint"`: the reverse direction, large guide, small answerer); the answerer answers with it."""

    def __init__(
        self,
        guide: LanguageModel,
        answerer: LanguageModel,
        *,
        style: Literal["rationale", "hint"] = "rationale",
        guide_tokens: int | None = None,
        name: str | None = None,
    ) -> None:
        if style not in ("rationale", "hint"):
            raise ValidationError(f"guided_cot style must be rationale or hint, got {style!r}")
        super().__init__(name or f"guided_cot({guide.name}->{answerer.name})", (guide, answerer))
        self.guide, self.answerer, self.style = guide, answerer, style
        self.guide_tokens = guide_tokens or (256 if style == "rationale" else 96)

    def prepare(self, request: Request) -> tuple[LanguageModel, Request, str, str]:
        notes = self.guide.generate(ask(request, f"cot_{self.style}", max_tokens=self.guide_tokens), role="guide")
        final = ask(request, "cot_answer", guidance=notes.text.strip())
        why = (
            f"guided_cot: {self.guide.name} wrote a {self.style} ({notes.usage.completion_tokens} tokens, "
            f"{usd(notes.cost_usd)}), {self.answerer.name} answers"
        )
        return self.answerer, final, "answer", why


class LLMGuided(Staged):
    """SynCID-style: the large model writes a guide to the task once per task key, the small model answers with it.

    The task key is `task` when given, else the request's system message (requests without one share the key
    "default"). Guides are cached as JSON files under `cache_dir`, with what writing them cost and how many requests
    used them, so the decision can report the large model's cost amortised over those requests."""

    def __init__(
        self,
        large: LanguageModel,
        small: LanguageModel,
        *,
        cache_dir: str | Path,
        task: str | None = None,
        guide_tokens: int = 384,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"llm_guided({large.name}->{small.name})", (large, small))
        self.large, self.small, self.task, self.guide_tokens = large, small, task, guide_tokens
        self.cache_dir = Path(cache_dir).expanduser()
        self._lock = threading.Lock()

    def task_key(self, request: Request) -> str:
        if self.task is not None:
            return self.task
        system = next((m.content for m in request.messages if m.role == "system"), None)
        return system if system else "default"

    def path(self, key: str) -> Path:
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"

    def guide(self, request: Request) -> tuple[dict[str, object], bool]:
        """The cached guide of the request's task (written by the large model on the first request of the task),
        with its use counted; and whether it was written now."""
        key = self.task_key(request)
        path = self.path(key)
        with self._lock:  # one writer per task; the large model is asked once even under concurrent requests
            entry = _read(path)
            written = entry is None or entry.get("key") != key
            if written:
                first = Request((Message("user", question(request)),), request.params)
                out = self.large.generate(ask(first, "task_description", max_tokens=self.guide_tokens), role="guide")
                entry = {"key": key, "description": out.text.strip(), "cost_usd": out.cost_usd, "uses": 0,
                         "cloud_tokens": out.usage.total_tokens}  # fmt: skip
            assert entry is not None
            entry["uses"] = int(entry["uses"]) + 1  # type: ignore[call-overload]
            _write(path, entry)
        return entry, written

    def prepare(self, request: Request) -> tuple[LanguageModel, Request, str, str]:
        entry, written = self.guide(request)
        final = ask(request, "guided_answer", description=str(entry["description"]))
        cost, uses = float(entry["cost_usd"]), int(entry["uses"])  # type: ignore[arg-type, call-overload]
        why = (
            f"llm_guided: task guide {'written now' if written else 'from the cache'} (cost {usd(cost)}, "
            f"used by {uses} requests: {usd(cost / uses)} per request)"
        )
        return self.small, final, "answer", why

    def amortised_cost(self, request: Request) -> float:
        """The large model's cost per request so far for the request's task (0 before its guide is written)."""
        entry = _read(self.path(self.task_key(request)))
        if entry is None or not entry.get("uses"):
            return 0.0
        return float(entry["cost_usd"]) / int(entry["uses"])  # type: ignore[arg-type, call-overload]


def _read(path: Path) -> dict[str, object] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent or torn: written again
    return loaded if isinstance(loaded, dict) and "description" in loaded else None


def _write(path: Path, entry: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one
