"""Compute-optimal test-time scaling across the pair (Snell et al. 2024; BestRoute): per query, under a budget, one
of several ways to spend compute, chosen by how hard the query looks.

The arms, cheapest first: `small` (the small model's greedy answer), `small_vote` (k small answers, a weighted
vote), `small_verify` (k small answers, the large model's P(yes) picks one: prompt tokens only), `large` (the
large model's answer), `large_vote` (the large answer and k small ones, a vote the large answer wins on ties).
The difficulty estimate is the small model's own confidence in its greedy answer (exp(mean token logprob)), which
every arm needs first anyway. `fit_allocation` bins train queries by it and picks one arm per bin maximising
train accuracy with the mean cost per query within the budget (exact, over every assignment); `ComputeOptimal`
applies it to new queries, and never spends more than `cap` on one query: an arm whose worst case (the prompt,
plus max_tokens written) would pass it is replaced by the best cheaper arm that fits.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from tandemlm.collab.base import decided
from tandemlm.collab.confidence import answer_key, p_yes, token_confidence
from tandemlm.collab.ensemble import Ballot, Whole, confidence_of, tally
from tandemlm.errors import ConfigError, UnsupportedOperationError, ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.types import Completion, Request, Usage

ARMS: tuple[str, ...] = ("small", "small_vote", "small_verify", "large", "large_vote")
Unit = Literal["usd", "cloud_tokens"]


@dataclass(frozen=True)
class Allocation:
    """Which arm answers each difficulty bin: `edges` are the confidence cut points (ascending; bin i holds
    confidences in [edges[i-1], edges[i])), `arms` one per bin, fitted at `budget` per query (in `unit`)."""

    edges: tuple[float, ...]
    arms: tuple[str, ...]
    budget: float
    unit: Unit = "usd"
    train_accuracy: float | None = None
    train_cost: float | None = None

    def __post_init__(self) -> None:
        if len(self.arms) != len(self.edges) + 1 or any(a not in ARMS for a in self.arms):
            raise ValidationError(f"an allocation needs one arm of {', '.join(ARMS)} per bin, got {self.arms}")
        if list(self.edges) != sorted(self.edges):
            raise ValidationError(f"allocation edges must ascend, got {self.edges}")

    def arm(self, confidence: float) -> str:
        return self.arms[int(np.searchsorted(np.asarray(self.edges), confidence, side="right"))]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Allocation:
        try:
            data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
            return cls(tuple(data["edges"]), tuple(data["arms"]), float(data["budget"]), data.get("unit", "usd"),
                       data.get("train_accuracy"), data.get("train_cost"))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"cannot read the TTS allocation {path}: {err}") from err


def fit_allocation(
    confidence: Sequence[float] | np.ndarray,
    correct: Mapping[str, Sequence[float] | np.ndarray],
    cost: Mapping[str, Sequence[float] | np.ndarray],
    budget: float,
    *,
    bins: int = 4,
    unit: Unit = "usd",
) -> Allocation:
    """The allocation with the best train accuracy whose mean cost per query is within `budget`: queries are cut
    into `bins` quantile bins of the small model's confidence, every assignment of the measured arms to bins is
    tried (ties: the cheaper). When even the cheapest assignment is over budget, the cheapest one is returned."""
    conf = np.asarray(confidence, dtype=np.float64)
    arms = [a for a in ARMS if a in correct]
    if not arms or len(conf) == 0:
        raise ValidationError("fit_allocation needs train queries and at least one measured arm")
    edges = tuple(sorted(set(float(q) for q in np.quantile(conf, np.linspace(0, 1, bins + 1)[1:-1]))))
    which = np.searchsorted(np.asarray(edges), conf, side="right")
    n_bins = len(edges) + 1
    acc = {a: [float(np.sum(np.asarray(correct[a])[which == b])) for b in range(n_bins)] for a in arms}
    spend = {a: [float(np.sum(np.asarray(cost[a])[which == b])) for b in range(n_bins)] for a in arms}
    best: tuple[float, float, tuple[str, ...]] | None = None
    cheapest: tuple[float, float, tuple[str, ...]] | None = None
    for choice in itertools.product(arms, repeat=n_bins):
        total_acc = sum(acc[a][b] for b, a in enumerate(choice)) / len(conf)
        total_cost = sum(spend[a][b] for b, a in enumerate(choice)) / len(conf)
        if cheapest is None or (total_cost, -total_acc) < (cheapest[1], -cheapest[0]):
            cheapest = (total_acc, total_cost, choice)
        if total_cost <= budget + 1e-12 and (best is None or (total_acc, -total_cost) > (best[0], -best[1])):
            best = (total_acc, total_cost, choice)
    chosen = best or cheapest
    assert chosen is not None
    return Allocation(edges, chosen[2], budget, unit, chosen[0], chosen[1])


class ComputeOptimal(Whole):
    """Answers each query with the arm its allocation gives the small model's confidence, within `cap` per query
    (default: the allocation's budget) in the allocation's unit."""

    def __init__(
        self,
        small: LanguageModel,
        large: LanguageModel,
        allocation: Allocation,
        *,
        samples: int = 4,
        key: Literal["number", "letter", "text"] = "text",
        cap: float | None = None,
        temperature: float = 0.7,
        name: str | None = None,
    ) -> None:
        if samples < 2:
            raise ValidationError(f"samples must be at least 2 (a vote of one is the small arm), got {samples}")
        super().__init__(name or f"tts({small.name},{large.name})", (small, large))
        self.small, self.large, self.allocation = small, large, allocation
        self.samples, self.key, self.temperature = samples, key, temperature
        self.cap = allocation.budget if cap is None else cap

    def cost(self, usage: Usage, model: LanguageModel) -> float:
        """A call's cost in the allocation's unit."""
        if self.allocation.unit == "usd":
            return model.price.cost(usage)
        return float(usage.total_tokens) if model.location == "cloud" else 0.0

    def worst_case(self, arm: str, request: Request) -> float:
        """The most `arm` can spend beyond the small greedy answer: each of its calls at max_tokens."""
        try:
            prompt = len(self.large.prompt_tokens(request))
        except UnsupportedOperationError:
            prompt = len(self.small.prompt_tokens(request))
        most = request.params.max_tokens
        small_call = self.cost(Usage(prompt, most), self.small)
        extra = self.samples - 1
        if arm == "small":
            return 0.0
        if arm == "small_vote":
            return extra * small_call
        if arm == "small_verify":  # a P(yes) pass reads the prompt, an answer and the question: no tokens written
            return extra * small_call + self.samples * self.cost(Usage(prompt + most + 64, 0), self.large)
        large_call = self.cost(Usage(prompt, most), self.large)
        return large_call + (extra * small_call if arm == "large_vote" else 0.0)

    def affordable(self, arm: str, request: Request, left: float) -> str:
        """`arm`, or when its worst case passes what is left of the cap, the most accurate-on-train cheaper arm
        that fits (order: the allocation's own arms' order in ARMS, small always fits)."""
        order = ARMS[: ARMS.index(arm) + 1]
        for candidate in reversed(order):
            if self.worst_case(candidate, request) <= left + 1e-12:
                return candidate
        return "small"

    def _generate(self, request: Request) -> Completion:
        greedy = self.small.generate(request, role="small")
        confidence = math.exp(token_confidence(self.small, request, greedy.text).mean_logprob)
        planned = self.allocation.arm(confidence)
        left = self.cap - sum(self.cost(e.usage, self.small) for e in greedy.trace if e.model == self.small.name)
        arm = self.affordable(planned, request, left)
        why = f"tts: confidence {confidence:.3f} -> {planned}" + (f", {arm} within the cap" if arm != planned else "")
        if arm == "small":
            return decided(greedy, why)
        ballots = [Ballot(0, 0, answer_key(greedy.text, self.key), confidence, greedy)]
        if arm in ("small_vote", "small_verify", "large_vote"):
            for s in range(1, self.samples):
                params = replace(request.params, temperature=self.temperature, seed=s)
                out = self.small.generate(replace(request, params=params), role=f"small sample {s}")
                weight = confidence_of(self.small, request, out.text)
                ballots.append(Ballot(0, s, answer_key(out.text, self.key), weight, out))
        if arm == "small_vote":
            return decided(_winner(ballots), why)
        if arm == "small_verify":
            scored = [(p_yes(self.large, request, b.completion.text), -i, b) for i, b in enumerate(ballots)]
            best = max(scored, key=lambda t: (t[0], t[1]))
            return decided(best[2].completion, f"{why}; the large model's P(yes) {best[0]:.3f} picked one")
        large = self.large.generate(request, role="large")
        if arm == "large":
            return decided(large, why)
        # the large answer first: it wins ties, and carries the weight of the strongest small answer
        top = max(b.weight for b in ballots)
        return decided(_winner([Ballot(1, 0, answer_key(large.text, self.key), top, large), *ballots]), why)


def _winner(ballots: list[Ballot]) -> Completion:
    winner, _ = tally(ballots)
    return max((b for b in ballots if b.key == winner), key=lambda b: b.weight).completion
