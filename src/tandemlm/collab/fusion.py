"""Logit fusion: models with one vocabulary decode together, token by token, from a combination of their
next-token distributions.

- `LogitFusion(members, weights)`: log-softmax(Σ wᵢ · log pᵢ), a product of experts.
- `ProxyTuned(large, tuned_small, base_small, alpha)` (proxy-tuning, Liu et al. 2024; EFT): the large model
  steered by a small model's tuning, log p_large + α (log p_tuned − log p_base). The privacy reading: the small
  models (tuned on private data) stay on the device; a remote large model receives token ids only.
- `Contrastive(expert, amateur, beta, alpha_mask)` (O'Brien & Lewis 2023): tokens with expert probability below
  alpha_mask · max are masked, the rest scored (1 + β) log p_expert − β log p_amateur.
- `SafetyGuided(model, safe_small, base_small, alpha, first_m)` (SafeDecoding, MOD): a safety-tuned small model's
  offsets on the model's distribution for the first m tokens of the answer (or all), then the model alone.

Each step every member asked is asked once, for the whole next-token vector, with the prefix grown by one token:
the engines keep their KV caches (llama.cpp reuses the longest shared prefix; a remote `openai` member on a tandem
gateway sends only the new tokens through its logprobs session), so no member evaluates a token twice. A model
named twice is asked once per step. Sampling, stop sequences, streaming and grammars are the other token-level
strategies' (collab/decoding.py, speculative.warp). The decision lists each emitted token's fused log-probability
and the members' (capped at `trace_tokens`), and what left the device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from tandemlm.collab.base import TOKEN_LEVEL, Strategy, token_level_features
from tandemlm.collab.decoding import Decoded
from tandemlm.collab.speculative import _masked, warp
from tandemlm.errors import UnsupportedOperationError, ValidationError, VocabularyMismatchError
from tandemlm.execution import in_parallel
from tandemlm.models.base import LanguageModel, final_completion
from tandemlm.structured import response_grammar
from tandemlm.types import Chunk, Completion, LogProbs, Request

#: emitted tokens whose contributions the decision lists (the rest are counted)
TRACE_TOKENS = 16


@dataclass(frozen=True)
class Contribution:
    """One emitted token: its id and text, its log-probability under the fused distribution, and under each member
    (None for a member not asked at that step)."""

    token: int
    text: str
    fused: float
    members: tuple[float | None, ...]

    def describe(self, roles: Sequence[str]) -> str:
        parts = " ".join(f"{r} {_num(v)}" for r, v in zip(roles, self.members, strict=True) if v is not None)
        return f"{self.text!r} {_num(self.fused)} ({parts})"

    def to_dict(self, roles: Sequence[str]) -> dict[str, object]:
        members = {r: None if v is None else round(v, 4) for r, v in zip(roles, self.members, strict=True)}
        return {"token": self.token, "text": self.text, "fused": round(self.fused, 4), "members": members}


@dataclass(frozen=True)
class FusionStats:
    """What one generation did: steps (distributions fused), calls per member, the first tokens' contributions,
    and the prompt and answer tokens the last step's prefix held (what a remote member has received, as ids)."""

    steps: int = 0
    tokens: int = 0
    calls: tuple[int, ...] = ()
    contributions: tuple[Contribution, ...] = ()
    prompt_tokens: int = 0
    answer_tokens_sent: int = 0


def _num(value: float) -> str:
    return "-inf" if value == -math.inf else f"{value:.2f}"


def _linear(values: Sequence[np.ndarray], coefficients: Sequence[float]) -> np.ndarray:
    """Σ cᵢ · valuesᵢ, where a token any member rules out (log-probability −inf) stays ruled out: with a
    negative coefficient it would otherwise become +inf."""
    total = np.zeros_like(values[0], dtype=np.float64)
    ruled_out = np.zeros(total.shape, dtype=bool)
    for v, c in zip(values, coefficients, strict=True):
        finite = np.isfinite(v)
        ruled_out |= ~finite
        total += c * np.where(finite, v, 0.0)
    total[ruled_out] = -np.inf
    return total


class FusedDecoder(Strategy):
    """The shared decoder: each step asks the members `active` at that step for their next-token distributions,
    `combine`s them into log-probabilities (renormalised here), and picks a token (greedy, or sampled after
    temperature and top-p). Subclasses say only how to combine."""

    carries = frozenset()
    not_carried = TOKEN_LEVEL
    constrained = True  # structured output is decoded under the grammar: a broken answer is not asked for again
    kind = "fusion"

    def __init__(
        self, name: str, members: Sequence[LanguageModel], roles: Sequence[str], *, trace_tokens: int = TRACE_TOKENS
    ) -> None:
        unique = list({id(m): m for m in members}.values())
        super().__init__(name, unique)
        if len(members) != len(roles):
            raise ValidationError(f"{len(members)} members but {len(roles)} roles")
        if trace_tokens < 0:
            raise ValidationError(f"trace_tokens must be >= 0, got {trace_tokens}")
        prints = {m.name: m.vocab_fingerprint for m in members}
        if None in prints.values() or len(set(prints.values())) > 1:
            blind = [n for n, f in prints.items() if f is None]
            why = f"{', '.join(blind)} do not expose their vocabularies" if blind else "have different vocabularies"
            raise VocabularyMismatchError(
                f"{self.kind} needs one tokenizer, but {', '.join(prints)} {why}: fuse models of one family "
                "(the Qwen 0.5B and 1.5B share one)"
            )
        self.members = tuple(members)
        self.roles = tuple(roles)
        self.trace_tokens = trace_tokens
        self.last_stats = FusionStats()
        self._reader: LanguageModel | None = None

    # ---- what subclasses define -------------------------------------------------------------------

    def active(self, step: int) -> tuple[int, ...]:
        """Indices of the members asked at this step of the answer (default: all)."""
        return tuple(range(len(self.members)))

    def combine(self, dists: Sequence[np.ndarray | None], step: int) -> np.ndarray:
        """The fused scores (any scale: they are log-softmaxed) from the members' dense log-probabilities (None
        for a member not asked at this step)."""
        raise NotImplementedError

    def summary(self) -> str:
        """The kind's parameters, for the decision."""
        return ""

    # ---- the reader: who renders prompts and reads tokens -----------------------------------------

    @property
    def reader(self) -> LanguageModel:
        """The first member that can tokenize (a remote member only scores: the vocabulary is the same)."""
        if self._reader is None:
            for m in self.members:
                try:
                    m.tokenize("a")
                except UnsupportedOperationError:
                    continue
                self._reader = m
                break
            else:
                raise UnsupportedOperationError(f"{self.name}: no member can tokenize (all are remote)")
        return self._reader

    @property
    def features(self) -> frozenset[str]:
        return token_level_features(self.reader)

    def _vocab_fingerprint(self) -> str | None:
        return self.members[0].vocab_fingerprint

    def _count_prompt_tokens(self, request: Request) -> int:
        return len(self.reader.prompt_tokens(request))

    def _prompt_tokens(self, request: Request) -> list[int]:
        return self.reader.prompt_tokens(request)

    def _is_end_token(self, token: int) -> bool:
        return self.reader.is_end_token(token)

    def _tokenize(self, text: str, add_special: bool) -> list[int]:
        return self.reader.tokenize(text, add_special=add_special)

    def _detokenize(self, tokens: list[int]) -> str:
        return self.reader.detokenize(tokens)

    # ---- decoding ---------------------------------------------------------------------------------

    def _ask(self, prefix: list[int], step: int) -> list[np.ndarray | None]:
        """Each active member's dense next-token log-probabilities after `prefix`, one call per distinct model, the
        models asked at once (each engine owns its handle: two local models decode in parallel, and a remote one
        does not wait for them)."""
        active = set(self.active(step))
        first: dict[int, int] = {}  # model id -> the first active member slot naming it
        for i, m in enumerate(self.members):
            if i in active:
                first.setdefault(id(m), i)
        # the whole vector: a fusion needs every token's log-probability, not a top-k list
        asks = [partial(self.members[i].next_token_logprobs, prefix, top_k=None, role=self.roles[i])
                for i in first.values()]  # fmt: skip
        got = {model: lp.dense() for model, lp in zip(first, in_parallel(*asks), strict=True)}
        out = [got[id(m)] if i in active else None for i, m in enumerate(self.members)]
        sizes = {len(d) for d in out if d is not None}
        if len(sizes) > 1:
            raise VocabularyMismatchError(f"{self.name}: the members' distributions have sizes {sorted(sizes)}")
        return out

    def _fused(self, dists: Sequence[np.ndarray | None], step: int) -> LogProbs:
        return LogProbs.from_logits(self.combine(dists, step))

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None) -> LogProbs:
        """The fused distribution after a token prefix (as the first step of an answer), so a fusion nests."""
        return self._fused(self._ask(tokens, 0), 0).keep_top(top_k)

    def _generate(self, request: Request) -> Completion:
        return final_completion(self._stream(request))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        params = request.params
        reader = self.reader
        answer = Decoded(reader, reader.prompt_tokens(request), params)
        rng = np.random.default_rng(params.seed)
        rf = params.response_format
        rules = reader.constraint(response_grammar(rf)) if rf is not None else None
        calls = [0] * len(self.members)
        contributions: list[Contribution] = []
        step = sent = 0
        while not answer.done:
            sent = len(answer.tokens)
            dists = self._ask(answer.prefix, step)
            for i in self.active(step):
                calls[i] += 1
            fused = self._fused(dists, step)
            # under a grammar: greedy checks the fused argmax first (one check), sampling masks the whole vector
            choose = _masked(rules, fused, params) if rules is not None else fused
            if params.temperature == 0:
                token = choose.argmax()
            else:
                token = int(rng.choice(choose.vocab_size, p=warp(choose, params)))
            if rules is not None and not reader.is_end_token(token):
                rules.accept(token)
            if len(contributions) < self.trace_tokens:
                members = tuple(None if d is None else float(d[token]) for d in dists)
                contributions.append(Contribution(token, reader.detokenize([token]), fused.logprob(token), members))
            step += 1
            if piece := answer.add([token]):
                yield Chunk(piece)
        self.last_stats = FusionStats(
            steps=step, tokens=len(answer.tokens), calls=tuple(calls), contributions=tuple(contributions),
            prompt_tokens=len(answer.prompt), answer_tokens_sent=sent,
        )  # fmt: skip
        *pieces, last = answer.final(self.name, self.describe())
        assert last.completion is not None
        # the contributions in full (rounded) for programs: the gateway adds them to the response's tandem field
        report = {"roles": list(self.roles), "members": [m.name for m in self.members], "calls": list(calls),
                  "tokens": [c.to_dict(self.roles) for c in contributions],
                  "more_tokens": max(0, self.last_stats.tokens - len(contributions))}  # fmt: skip
        yield from pieces
        yield replace(last, completion=replace(last.completion, extensions={self.kind: report}))

    def describe(self) -> str:
        """The decision: the kind and its parameters, steps, calls per member, what left the device, and each of
        the first tokens' fused and member log-probabilities."""
        s = self.last_stats
        head = f"{self.kind}: {self.summary()} steps={s.steps} tokens={s.tokens} calls="
        head += ",".join(f"{r}:{n}" for r, n in zip(self.roles, s.calls, strict=True))
        shown = " | ".join(c.describe(self.roles) for c in s.contributions)
        more = s.tokens - len(s.contributions)
        tail = f" (+{more} more)" if more > 0 and shown else ""
        return f"{head}; {self.egress_note()}; per token (fused, members): {shown or '-'}{tail}"

    def egress_note(self) -> str:
        """What left the device: token ids only, to the cloud-located members, never another member's logits."""
        cloud = sorted({self.members[i].name for i, n in enumerate(self.last_stats.calls) if n
                        and self.members[i].location == "cloud"})  # fmt: skip
        if not cloud:
            return "left the device: nothing (every member is on the edge)"
        s = self.last_stats
        return (
            f"left the device: token ids only, to {', '.join(cloud)} (the prompt's {s.prompt_tokens} and the "
            f"answer's first {s.answer_tokens_sent}); no text, no other member's logits"
        )


class LogitFusion(FusedDecoder):
    """A weighted product of experts: log-softmax(Σ wᵢ · log pᵢ(x)) over members with one vocabulary. Weights are
    non-negative (equal by default); their sum sharpens (> 1) or flattens (< 1) the fused distribution."""

    kind = "fusion"

    def __init__(
        self, members: Sequence[LanguageModel], weights: Sequence[float] | None = None, *, name: str | None = None,
        trace_tokens: int = TRACE_TOKENS,
    ) -> None:  # fmt: skip
        if len(members) < 1:
            raise ValidationError("logit fusion needs at least one member")
        w = [1.0 / len(members)] * len(members) if weights is None else [float(x) for x in weights]
        if len(w) != len(members):
            raise ValidationError(f"{len(members)} members but {len(w)} weights")
        if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
            raise ValidationError(
                f"weights must be non-negative with a positive sum, got {w} (for a negative weight use "
                "proxy_tuned or contrastive)"
            )
        self.weights = tuple(w)
        super().__init__(
            name or f"fusion({'+'.join(m.name for m in members)})", members,
            _member_roles(members), trace_tokens=trace_tokens,
        )  # fmt: skip

    def combine(self, dists: Sequence[np.ndarray | None], step: int) -> np.ndarray:
        return _linear([d for d in dists if d is not None], self.weights)

    def summary(self) -> str:
        return "weights=" + ",".join(f"{m.name}:{w:g}" for m, w in zip(self.members, self.weights, strict=True))


def _member_roles(members: Sequence[LanguageModel]) -> list[str]:
    """Each member's role on the trace: its name, or "member i" when a name repeats."""
    names = [m.name for m in members]
    return names if len(set(names)) == len(names) else [f"member {i}" for i in range(len(names))]


class ProxyTuned(FusedDecoder):
    """Proxy-tuning: log p_large + α (log p_tuned − log p_base), renormalised. The tuned small model's difference
    from its base steers the large model without the large model's weights, or the tuning data, being touched."""

    kind = "proxy_tuned"

    def __init__(
        self, large: LanguageModel, tuned_small: LanguageModel, base_small: LanguageModel, *, alpha: float = 1.0,
        name: str | None = None, trace_tokens: int = TRACE_TOKENS,
    ) -> None:  # fmt: skip
        if not math.isfinite(alpha):
            raise ValidationError(f"alpha must be finite, got {alpha}")
        self.alpha = float(alpha)
        super().__init__(
            name or f"proxy_tuned({large.name}+{tuned_small.name}-{base_small.name})",
            (large, tuned_small, base_small), ("large", "tuned", "base"), trace_tokens=trace_tokens,
        )  # fmt: skip

    def combine(self, dists: Sequence[np.ndarray | None], step: int) -> np.ndarray:
        large, tuned, base = dists
        assert large is not None and tuned is not None and base is not None
        return _linear([large, tuned, base], [1.0, self.alpha, -self.alpha])

    def summary(self) -> str:
        return f"alpha={self.alpha:g}"


class Contrastive(FusedDecoder):
    """Contrastive decoding: among the tokens the expert gives at least alpha_mask times its top probability,
    the one the expert prefers most over the amateur: (1 + β) log p_expert − β log p_amateur."""

    kind = "contrastive"

    def __init__(
        self, expert: LanguageModel, amateur: LanguageModel, *, beta: float = 0.5, alpha_mask: float = 0.1,
        name: str | None = None, trace_tokens: int = TRACE_TOKENS,
    ) -> None:  # fmt: skip
        if not (math.isfinite(beta) and beta >= 0):
            raise ValidationError(f"beta must be >= 0, got {beta}")
        if not 0.0 <= alpha_mask <= 1.0:
            raise ValidationError(f"alpha_mask must be in [0, 1], got {alpha_mask}")
        self.beta, self.alpha_mask = float(beta), float(alpha_mask)
        super().__init__(
            name or f"contrastive({expert.name}-{amateur.name})", (expert, amateur), ("expert", "amateur"),
            trace_tokens=trace_tokens,
        )  # fmt: skip

    def combine(self, dists: Sequence[np.ndarray | None], step: int) -> np.ndarray:
        expert, amateur = dists
        assert expert is not None and amateur is not None
        scores = _linear([expert, amateur], [1.0 + self.beta, -self.beta])
        if self.alpha_mask > 0:
            scores[expert < float(np.max(expert)) + math.log(self.alpha_mask)] = -np.inf
        return scores

    def summary(self) -> str:
        return f"beta={self.beta:g} alpha_mask={self.alpha_mask:g}"


class SafetyGuided(FusedDecoder):
    """Safety-guided decoding: for the first `first_m` tokens of the answer (all when None) the model's distribution
    is offset by a safety-tuned small model's difference from its base, log p + α (log p_safe − log p_base); then
    the model decodes alone (the small models are no longer asked). The opening tokens decide whether an answer
    refuses (SafeDecoding's observation), so a few guided tokens cost little."""

    kind = "safety_guided"

    def __init__(
        self, model: LanguageModel, safe_small: LanguageModel, base_small: LanguageModel, *, alpha: float = 1.0,
        first_m: int | None = 2, name: str | None = None, trace_tokens: int = TRACE_TOKENS,
    ) -> None:  # fmt: skip
        if not math.isfinite(alpha):
            raise ValidationError(f"alpha must be finite, got {alpha}")
        if first_m is not None and first_m < 0:
            raise ValidationError(f"first_m must be >= 0 or None (every token), got {first_m}")
        self.alpha, self.first_m = float(alpha), first_m
        super().__init__(
            name or f"safety_guided({model.name}+{safe_small.name}-{base_small.name})",
            (model, safe_small, base_small), ("model", "safe", "base"), trace_tokens=trace_tokens,
        )  # fmt: skip

    def guided(self, step: int) -> bool:
        return self.first_m is None or step < self.first_m

    def active(self, step: int) -> tuple[int, ...]:
        return (0, 1, 2) if self.guided(step) else (0,)

    def combine(self, dists: Sequence[np.ndarray | None], step: int) -> np.ndarray:
        model, safe, base = dists
        assert model is not None
        if not self.guided(step):
            return model
        assert safe is not None and base is not None
        return _linear([model, safe, base], [1.0, self.alpha, -self.alpha])

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None) -> LogProbs:
        if self.first_m is not None:
            raise UnsupportedOperationError(
                f"{self.name}: the offsets apply to the first {self.first_m} tokens of an answer, which a bare token "
                "prefix does not tell; generate instead, or set first_m to null (every token)"
            )
        return super()._next_token_logprobs(tokens, top_k)

    def summary(self) -> str:
        return f"alpha={self.alpha:g} first_m={'all' if self.first_m is None else self.first_m}"
