"""Speculative decoding: the edge model drafts k tokens, the cloud model checks them all in one pass.

Greedy decoding accepts a drafted token when it is the target's own argmax, so the text is the
target's greedy text. Sampling uses the accept/reject rule of Leviathan et al. (2023): accept token x
with probability min(1, p(x)/q(x)), else sample from norm(max(0, p − q)), so every token is
distributed exactly as the target's. Both models keep their KV caches between rounds (the engines
reuse the longest shared prefix), so neither re-reads the prompt or the accepted tokens.

The draft comes from the draft model, from prompt lookup (collab/drafting.py: n-gram matches against the
prompt and the answer so far, no model) or from both (`hybrid`: lookup where it finds a match, the model
elsewhere). A lookup draft is deterministic, q = one-hot, so the same rule accepts it with probability p(x)
and otherwise samples from p with x removed: still exactly the target's distribution.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from tandemlm.collab.base import TOKEN_LEVEL, Strategy, token_level_features
from tandemlm.collab.decoding import Decoded
from tandemlm.collab.drafting import DRAFTERS, DrafterKind, PromptLookup, next_lookup_k
from tandemlm.errors import EngineError, UnsupportedOperationError, VocabularyMismatchError
from tandemlm.models.base import Constraint, LanguageModel, final_completion
from tandemlm.structured import response_grammar
from tandemlm.types import Chunk, Completion, GenerationParams, LogProbs, Request


@dataclass(frozen=True)
class SpeculationStats:
    """What one generation did: rounds, drafted and accepted tokens, and where the time went."""

    rounds: int = 0
    drafted: int = 0
    accepted: int = 0
    generated: int = 0
    first_round_s: float = 0.0  # includes both models reading the prompt, so it is kept out of the costs below
    timed_rounds: int = 0  # the rounds after the first, which the costs describe
    timed_drafted: int = 0  # tokens drafted in those rounds, by the model or by lookup
    timed_model_drafted: int = 0  # of them, by the draft model
    draft_s: float = 0.0  # the draft model's time in the timed rounds
    verify_s: float = 0.0
    k: int = 0
    lookup_rounds: int = 0  # rounds drafted by prompt lookup (no model)
    lookup_drafted: int = 0
    lookup_accepted: int = 0
    lookup_s: float = 0.0  # time spent looking up, in the timed rounds
    accept_s: float = 0.0  # the accept rule, grammar masks and state, in the timed rounds
    emit_s: float = 0.0  # detokenizing and scanning for stop sequences, in the timed rounds
    total_s: float = 0.0  # the whole generation, from the prompt's tokens to the last chunk

    @property
    def parts_s(self) -> float:
        """What the cost model predicts the generation takes: the first round, then the draft and verify costs."""
        return self.first_round_s + self.draft_s + self.lookup_s + self.verify_s

    @property
    def overhead_s(self) -> float:
        """The time outside the parts: the accept rule, detokenizing, bookkeeping and the strategy's own code."""
        return max(0.0, self.total_s - self.parts_s)

    @property
    def acceptance(self) -> float:
        """α: the share of drafted tokens the target accepted."""
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def mean_accepted(self) -> float:
        """Drafted tokens accepted per round (each round also adds one target token)."""
        return self.accepted / self.rounds if self.rounds else 0.0

    @property
    def cost_ratio(self) -> float:
        """c: time of one draft token over time of one target verification pass (after the first round)."""
        if not self.timed_model_drafted or not self.timed_rounds or not self.verify_s:
            return 0.0
        return (self.draft_s / self.timed_model_drafted) / (self.verify_s / self.timed_rounds)

    @property
    def draft_ms_per_token(self) -> float:
        """Time of one token drafted by the model (lookup drafts, which cost about nothing, are not counted)."""
        return 1000 * self.draft_s / self.timed_model_drafted if self.timed_model_drafted else 0.0

    @property
    def verify_ms_per_position(self) -> float:
        """Verification time per position checked (drafted tokens plus one per round). On a GPU a pass costs
        about the same for any k; on a CPU it grows with k, which the bound S does not model."""
        checked = self.timed_drafted + self.timed_rounds
        return 1000 * self.verify_s / checked if checked else 0.0

    def bound(self, gamma: int | None = None) -> float:
        """The expected speedup S = (1 − α^(γ+1)) / ((1 − α)(γc + 1)) for the measured α and c."""
        return speedup_bound(self.acceptance, gamma if gamma is not None else max(self.k, 1), self.cost_ratio)

    def describe(self) -> str:
        return (
            f"speculative: rounds={self.rounds} drafted={self.drafted} accepted={self.accepted} "
            f"alpha={self.acceptance:.3f} mean_accepted={self.mean_accepted:.2f} k={self.k} "
            f"first_round_s={self.first_round_s:.3f} draft_s={self.draft_s:.3f} verify_s={self.verify_s:.3f} "
            f"c={self.cost_ratio:.3f} bound={self.bound():.3f} "
            f"draft_ms_per_token={self.draft_ms_per_token:.1f} "
            f"verify_ms_per_position={self.verify_ms_per_position:.1f} "
            f"lookup_rounds={self.lookup_rounds} lookup_drafted={self.lookup_drafted} "
            f"lookup_accepted={self.lookup_accepted} total_s={self.total_s:.3f} overhead_s={self.overhead_s:.3f}"
        )


def speedup_bound(alpha: float, gamma: int, c: float) -> float:
    """Leviathan et al.'s expected speedup of speculative decoding with acceptance α, γ drafts, cost ratio c."""
    if alpha >= 1.0:
        return (gamma + 1) / (gamma * c + 1)
    return (1 - alpha ** (gamma + 1)) / ((1 - alpha) * (gamma * c + 1))


class SpeculativeDecoder(Strategy):
    """`draft` proposes, `target` decides; the answer is the target's (exactly, see the module docstring).

    k: tokens drafted per round by the model (the first round's when adaptive). adaptive: re-pick k each
    round in [1, k_max], climbing towards the k with the highest measured tokens per second.
    drafter: "model" (the draft model), "lookup" (prompt lookup, no draft model needed: `draft` may be None)
    or "hybrid" (lookup where the context has a match, the model elsewhere). lookup: the n-gram matcher;
    lookup_k: the most tokens one lookup draft proposes (fewer after a rejection, see `next_lookup_k`).
    """

    carries = frozenset()
    not_carried = TOKEN_LEVEL
    constrained = True  # structured output is decoded under the grammar: a broken answer is not asked for again

    @property
    def features(self) -> frozenset[str]:
        return token_level_features(self._text)

    def __init__(
        self,
        draft: LanguageModel | None,
        target: LanguageModel,
        *,
        k: int = 4,
        adaptive: bool = True,
        k_max: int = 8,
        drafter: DrafterKind = "model",
        lookup: PromptLookup | None = None,
        lookup_k: int = 8,
        name: str | None = None,
    ) -> None:
        if drafter not in DRAFTERS:
            raise ValueError(f"drafter must be one of {', '.join(DRAFTERS)}, got {drafter!r}")
        if drafter == "lookup":
            draft = None  # lookup drafts need no model
        elif draft is None:
            raise ValueError(f"drafter {drafter!r} needs a draft model")
        source = "lookup" if draft is None else draft.name
        children = (target,) if draft is None else (draft, target)
        super().__init__(name or f"speculative({source}->{target.name})", children, context_from=(target,))
        if not 1 <= k <= k_max:
            raise ValueError(f"need 1 <= k <= k_max, got k={k}, k_max={k_max}")
        if lookup_k < 1:
            raise ValueError(f"need lookup_k >= 1, got {lookup_k}")
        if draft is not None:
            fd, ft = draft.vocab_fingerprint, target.vocab_fingerprint
            if fd is None or ft is None or fd != ft:
                raise VocabularyMismatchError(
                    f"speculative decoding needs one tokenizer, but {draft.name} and {target.name} "
                    + ("have different vocabularies" if fd and ft else "do not expose their vocabularies")
                )
        self.draft, self.target = draft, target
        self.k, self.adaptive, self.k_max = k, adaptive, k_max
        self.drafter = drafter
        self.lookup = lookup if lookup is not None else PromptLookup() if drafter != "model" else None
        self.lookup_k = lookup_k
        self.last_stats = SpeculationStats()
        self._tokenizer: LanguageModel | None = None

    @property
    def _text(self) -> LanguageModel:
        """Who renders prompts and reads tokens: the target when it can (a local model), else the draft, whose
        vocabulary is the same (a target served remotely only verifies)."""
        if self._tokenizer is None:
            try:
                self.target.tokenize("a")
                self._tokenizer = self.target
            except UnsupportedOperationError:
                if self.draft is None:
                    raise UnsupportedOperationError(
                        f"lookup drafting reads the target's tokens, and {self.target.name} cannot tokenize"
                    ) from None
                self._tokenizer = self.draft
        return self._tokenizer

    def _count_prompt_tokens(self, request: Request) -> int | None:
        return len(self._text.prompt_tokens(request))

    def _prompt_tokens(self, request: Request) -> list[int]:
        return self._text.prompt_tokens(request)

    def _is_end_token(self, token: int) -> bool:
        return self._text.is_end_token(token)

    def _tokenize(self, text: str, add_special: bool) -> list[int]:
        return self._text.tokenize(text, add_special=add_special)

    def _detokenize(self, tokens: list[int]) -> str:
        return self._text.detokenize(tokens)

    def _generate(self, request: Request) -> Completion:
        return final_completion(self._stream(request))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        started = time.perf_counter()
        params = request.params
        answer = Decoded(self._text, self._text.prompt_tokens(request), params)
        rng = np.random.default_rng(params.seed)
        stats = SpeculationStats(k=self.k)
        k, lookup_k = self.k, self.lookup_k
        rates: dict[int, tuple[int, float]] = {}  # k -> (tokens produced, seconds), for adapting k
        rf = params.response_format
        # under a grammar both distributions are masked to what it allows at each position, so the accept rule
        # keeps the target's masked distribution (greedy: the target's masked argmax)
        rules = self._text.constraint(response_grammar(rf)) if rf is not None else None
        while not answer.done:
            prefix = answer.prefix
            t0 = time.perf_counter()
            draft = self._draft(prefix, min(k, answer.room - 1), min(lookup_k, answer.room - 1), params, rng, rules)
            drafted, proposals, states = draft.tokens, draft.proposals, draft.states
            t1 = time.perf_counter()
            positions = list(range(len(prefix) - 1, len(prefix) + len(drafted)))
            # greedy needs only the argmax (a remote target sends less), unless a grammar may forbid it
            top_k = 1 if params.temperature == 0 and rules is None else None
            verdicts = self.target.logprobs_after(prefix + drafted, positions, top_k=top_k, role="verifier")
            t2 = time.perf_counter()
            ended = bool(drafted) and self._text.is_end_token(drafted[-1])  # no token follows it: leave that one
            if states:
                verdicts = [v if ended and i == len(drafted) else _masked(state, v, params)
                            for i, (state, v) in enumerate(zip(states, verdicts, strict=True))]  # fmt: skip
            new = _accept(drafted, proposals, verdicts, params, rng)
            if states and not any(self._text.is_end_token(t) for t in new):
                rules = states[len(new) - 1]  # the grammar's state after the accepted tokens, then the target's one
                rules.accept(new[-1])
            t3 = time.perf_counter()
            stats = replace(
                stats, rounds=stats.rounds + 1, drafted=stats.drafted + len(drafted),
                accepted=stats.accepted + len(new) - 1, k=k,
            )  # fmt: skip
            if draft.looked_up:
                lookup_k = next_lookup_k(lookup_k, len(drafted), len(new) - 1, self.lookup_k)
                stats = replace(
                    stats, lookup_rounds=stats.lookup_rounds + 1, lookup_drafted=stats.lookup_drafted + len(drafted),
                    lookup_accepted=stats.lookup_accepted + len(new) - 1,
                )  # fmt: skip
            piece = answer.add(new)
            t4 = time.perf_counter()
            if stats.rounds == 1:
                stats = replace(stats, first_round_s=t2 - t0)
            else:
                model_drafted = 0 if draft.looked_up else len(drafted)
                stats = replace(
                    stats, timed_rounds=stats.timed_rounds + 1, timed_drafted=stats.timed_drafted + len(drafted),
                    timed_model_drafted=stats.timed_model_drafted + model_drafted,
                    draft_s=stats.draft_s + (0.0 if draft.looked_up else t1 - t0),
                    lookup_s=stats.lookup_s + (t1 - t0 if draft.looked_up else 0.0),
                    verify_s=stats.verify_s + t2 - t1, accept_s=stats.accept_s + t3 - t2, emit_s=stats.emit_s + t4 - t3,
                )  # fmt: skip
            if piece:
                yield Chunk(piece)
            if self.adaptive and not draft.looked_up:
                tokens, seconds = rates.get(k, (0, 0.0))
                rates[k] = (tokens + len(new), seconds + t2 - t0)
                k = _next_k(rates, self.k_max)
        self.last_stats = replace(stats, generated=len(answer.tokens), total_s=time.perf_counter() - started)
        yield from answer.final(self.name, self.last_stats.describe())

    def _draft(
        self, prefix: list[int], k: int, lookup_k: int, params: GenerationParams, rng: np.random.Generator,
        rules: Constraint | None = None,
    ) -> _Draft:  # fmt: skip
        """This round's draft: prompt lookup's where the drafter uses lookup and it finds a match, else up to k
        tokens from the draft model (a lookup drafter with no match drafts nothing: the target decodes one token)."""
        if self.lookup is not None:
            found = self._looked_up(prefix, lookup_k, rules)
            if found.tokens or self.draft is None:
                return found
        return self._model_draft(prefix, k, params, rng, rules)

    def _looked_up(self, prefix: list[int], k: int, rules: Constraint | None) -> _Draft:
        """The lookup continuation, cut after an end token and before the first token the grammar forbids."""
        assert self.lookup is not None
        drafted: list[int] = []
        states = [rules.copy()] if rules is not None else []
        for token in self.lookup.propose(prefix, k):
            if states and not states[-1].allows(token):
                break
            drafted.append(token)
            if states:
                states.append(states[-1].copy())
                states[-1].accept(token)
            if self._text.is_end_token(token):
                break
        return _Draft(drafted, [None] * len(drafted), states, looked_up=True)

    def _model_draft(
        self, prefix: list[int], k: int, params: GenerationParams, rng: np.random.Generator,
        rules: Constraint | None = None,
    ) -> _Draft:  # fmt: skip
        """k draft tokens (fewer if the draft ends its turn), with the draft's distributions when sampling. Under
        a grammar (`rules`), also its state before each drafted token and after the last: where the target's
        verdicts are masked."""
        assert self.draft is not None
        drafted: list[int] = []
        proposals: list[np.ndarray | None] = []
        states = [rules.copy()] if rules is not None else []
        # greedy drafting needs only the argmax: the engine then skips normalising the whole vocabulary
        top_k = 1 if params.temperature == 0 and rules is None else None
        for _ in range(k):
            lp = self.draft.next_token_logprobs(prefix + drafted, top_k=top_k, role="draft")
            if states:
                lp = _masked(states[-1], lp, params)
            if params.temperature == 0:
                token = lp.argmax()
                proposals.append(None)  # a greedy draft is deterministic: q is one-hot
            else:
                q = warp(lp, params)
                token = int(rng.choice(len(q), p=q))
                proposals.append(q)
            drafted.append(token)
            if states:
                states.append(states[-1].copy())
                states[-1].accept(token)
            if self.draft.is_end_token(token):
                break
        return _Draft(drafted, proposals, states, looked_up=False)


@dataclass(frozen=True)
class _Draft:
    """One round's draft: the tokens, q for each (None: deterministic, q one-hot), and under a grammar its state
    before each token and after the last."""

    tokens: list[int]
    proposals: list[np.ndarray | None]
    states: list[Constraint]
    looked_up: bool


def _accept(
    drafted: list[int], proposals: list[np.ndarray | None], verdicts: list[LogProbs], params: GenerationParams,
    rng: np.random.Generator,
) -> list[int]:  # fmt: skip
    """The accepted drafted tokens, then one token from the target (a correction, or a bonus if all passed).

    Sampled: token x drafted from q is kept with probability min(1, p(x)/q(x)), else the correction is drawn from
    norm(max(0, p - q)). A deterministic draft (q one-hot at x) is kept with probability p(x), and the correction
    is drawn from p with x removed: together, exactly p."""
    greedy = params.temperature == 0
    accepted: list[int] = []
    for i, token in enumerate(drafted):
        if greedy:
            best = verdicts[i].argmax()
            if best != token:
                return [*accepted, best]
        else:
            p, q = warp(verdicts[i], params), proposals[i]
            keep = p[token] if q is None else min(1.0, p[token] / q[token])
            if rng.random() >= keep:
                if q is None:
                    residual = p.copy()
                    residual[token] = 0.0
                else:
                    residual = np.maximum(p - q, 0.0)
                total = residual.sum()
                return [*accepted, int(rng.choice(len(p), p=residual / total if total > 0 else p))]
        accepted.append(token)
    last = verdicts[len(drafted)]
    bonus = last.argmax() if greedy else int(rng.choice(last.vocab_size, p=warp(last, params)))
    return [*accepted, bonus]


def _masked(state: Constraint, dist: LogProbs, params: GenerationParams) -> LogProbs:
    """`dist` as the grammar's state allows it. Greedy decoding needs only the allowed argmax: the plain argmax
    when the grammar allows it (one check), else the masked one; sampling needs the whole masked distribution."""
    if params.temperature == 0:
        best = dist.argmax()
        if not state.allows(best):
            best = _allowed_argmax(state, dist)
        return LogProbs.from_top(dist.vocab_size, [(best, 0.0)])
    return state.mask(dist)


GRAMMAR_CANDIDATES = 64  # the likeliest tokens checked in one grammar call before the whole vocabulary is masked


def _allowed_argmax(state: Constraint, dist: LogProbs) -> int:
    """The most likely token the grammar allows, as `state.mask(dist).argmax()` gives it (ties to the lowest id).
    It is nearly always among the few likeliest, so those are checked first in one call: masking the whole
    vocabulary runs the grammar over every token (~40 ms for SmolLM2's 49 k on a CPU, a decoding step's worth)."""
    top = dist.keep_top(GRAMMAR_CANDIDATES)
    if top.ids is not None and len(top.ids) < dist.vocab_size:
        try:
            kept = state.mask(top)
        except EngineError:  # none of them allowed: the whole vocabulary below
            kept = None
        if kept is not None and kept.ids is not None:
            allowed = {int(i) for i in kept.ids}
            values = {int(i): float(v) for i, v in zip(top.ids, top.values, strict=True)}
            peak = max(values[i] for i in allowed)
            # exact only when no token left out of the candidates can tie the best allowed one
            if peak > float(top.values.min()):
                return min(i for i in allowed if values[i] == peak)
    return state.mask(dist).argmax()


def warp(lp: LogProbs, params: GenerationParams) -> np.ndarray:
    """Sampling probabilities after temperature and top-p, over the whole vocabulary."""
    logits = lp.dense() / params.temperature
    p = np.exp(logits - logits.max())
    p /= p.sum()
    if params.top_p < 1.0:
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), params.top_p)) + 1]
        mask = np.zeros_like(p)
        mask[keep] = p[keep]
        p = mask / mask.sum()
    return p


def _next_k(rates: dict[int, tuple[int, float]], k_max: int) -> int:
    """Hill-climb on measured throughput: the k with the most tokens per second so far, unless a neighbour of
    it is still untried. Model-free, because the cost of verifying k + 1 positions is nearly flat in k on a
    GPU but grows with k on a CPU, and the draft/target cost ratio differs per machine."""
    best = max(rates, key=lambda k: rates[k][0] / rates[k][1] if rates[k][1] else 0.0)
    for neighbour in (best + 1, best - 1):
        if 1 <= neighbour <= k_max and neighbour not in rates:
            return neighbour
    return best
