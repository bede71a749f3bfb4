"""Parallel ensembles of the pair: several models (and samples) answer, and one answer is chosen.

- `Vote(members, samples)` (ELM, self-consistency across models): every member answers greedily, plus
  `samples - 1` sampled answers; answers are grouped by an answer key (the final number, the option letter, the
  normalised text) and each group's votes are weighted by the writer's confidence (exp(mean token logprob)). For
  code the key is the prompt's own examples: the candidate passing the most of them in the sandbox wins.
- `CrossVerify(a, b, rounds)` (CaLM, debate): both answer; while they disagree, each sees the other's answer and
  reconsiders, up to `rounds` times; `b` (the larger model) breaks a remaining tie.
- `Rank(candidates, judge)` (LLM-Blender's ranker without a fuser): every candidate answers, the judge scores each
  answer by its mean token log-likelihood in one pass, the best is returned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from tandemlm.collab.base import decided
from tandemlm.collab.confidence import answer_key, examples_passed, sampled, token_confidence
from tandemlm.collab.guidance import PromptLevel
from tandemlm.collab.prompting import ask, question
from tandemlm.errors import UnsupportedOperationError, ValidationError
from tandemlm.execution import in_parallel
from tandemlm.models.base import LanguageModel
from tandemlm.types import Chunk, Completion, Request

VoteKey = Literal["number", "letter", "text", "code"]
VOTE_KEYS: tuple[str, ...] = ("number", "letter", "text", "code")


@dataclass(frozen=True)
class Ballot:
    """One answer in a vote: who wrote it, its key, its weight, and the completion itself."""

    member: int
    sample: int
    key: str
    weight: float
    completion: Completion


def confidence_of(model: LanguageModel, request: Request, answer: str) -> float:
    """exp(mean token logprob) of an answer under the model that wrote it; 1 when the model gives no logprobs."""
    try:
        return math.exp(token_confidence(model, request, answer).mean_logprob)
    except UnsupportedOperationError:
        return 1.0


def tally(ballots: Sequence[Ballot]) -> tuple[str, dict[str, float]]:
    """The winning key and every key's total weight. Ties go to the key whose first ballot comes earliest (members
    are listed strongest first; a member's greedy answer before its samples). Empty keys (no answer found) lose to
    any other key."""
    totals: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, b in enumerate(ballots):
        totals[b.key] = totals.get(b.key, 0.0) + b.weight
        first.setdefault(b.key, i)
    winner = max(totals, key=lambda k: (k != "", totals[k], -first[k]))
    return winner, totals


class Whole(PromptLevel):
    """An ensemble answers whole: its text is chosen among finished answers, so a stream is that answer at once."""

    def _stream(self, request: Request) -> Iterator[Chunk]:
        completion = self._generate(request)
        yield Chunk(completion.text)
        yield Chunk("", completion.finish_reason, completion)


class Vote(Whole):
    """Majority over the members' answers by answer key, weighted by each answer's confidence (`weighted`)."""

    def __init__(
        self,
        members: Sequence[LanguageModel],
        *,
        samples: int = 1,
        key: VoteKey = "text",
        weighted: bool = True,
        temperature: float = 0.7,
        name: str | None = None,
    ) -> None:
        if len(members) < 1 or samples < 1:
            raise ValidationError("a vote needs at least one member and one sample per member")
        if key not in VOTE_KEYS:
            raise ValidationError(f"unknown vote key {key!r}; one of {', '.join(VOTE_KEYS)}")
        super().__init__(name or f"vote({','.join(m.name for m in members)})", members)
        self.members, self.samples, self.key = tuple(members), samples, key
        self.weighted, self.temperature = weighted, temperature

    def ballots(self, request: Request) -> list[Ballot]:
        """Every member's ballots, in member order; the members answer at the same time, each its greedy answer and
        its samples in one `generate_many` (an engine that batches decodes them together)."""
        by_member = in_parallel(*(partial(self._member_ballots, request, i) for i in range(len(self.members))))
        return [b for ballots in by_member for b in ballots]

    def _member_ballots(self, request: Request, i: int) -> list[Ballot]:
        member = self.members[i]
        asked = [request, *(sampled(request, self.temperature, s) for s in range(1, self.samples))]
        out = []
        roles = [f"member {i}", *(f"member {i} sample {s}" for s in range(1, self.samples))]
        for s, answer in enumerate(member.generate_many(asked, roles=roles)):
            weight = confidence_of(member, request, answer.text) if self.weighted else 1.0
            out.append(Ballot(i, s, self._key(request, answer.text), weight, answer))
        return out

    def _key(self, request: Request, answer: str) -> str:
        if self.key != "code":
            return answer_key(answer, self.key)
        passed = examples_passed(question(request), answer)
        # code is grouped by how many examples it passes; unrun (no examples) keeps its normalised text
        return answer_key(answer, "text") if passed is None else f"passes {passed[0]}/{passed[1]}"

    def _generate(self, request: Request) -> Completion:
        ballots = self.ballots(request)
        winner, totals = self._winner(ballots)
        best = max((b for b in ballots if b.key == winner), key=lambda b: b.weight)
        shown = ", ".join(f"{k or '(none)'!r}: {w:.2f}" for k, w in sorted(totals.items(), key=lambda kv: -kv[1]))
        why = f"vote: {winner or '(none)'!r} won ({shown}) over {len(ballots)} answers; member {best.member}'s text"
        return decided(best.completion, why)

    def _winner(self, ballots: list[Ballot]) -> tuple[str, dict[str, float]]:
        if self.key != "code":
            return tally(ballots)

        # for code the most examples passed wins outright; the weights only break ties among equal counts
        def passed(k: str) -> float:
            m = re.fullmatch(r"passes (\d+)/(\d+)", k)
            return int(m.group(1)) if m else -1

        top = max(passed(b.key) for b in ballots)
        return tally([b for b in ballots if passed(b.key) == top])


class CrossVerify(Whole):
    """Both answer; on disagreement (by `key`) each reconsiders with the other's answer, up to `rounds` times; `b`
    (name the larger model b) breaks a remaining tie."""

    def __init__(
        self,
        a: LanguageModel,
        b: LanguageModel,
        *,
        rounds: int = 2,
        key: Literal["number", "letter", "text"] = "text",
        name: str | None = None,
    ) -> None:
        if rounds < 0:
            raise ValidationError(f"rounds must be >= 0, got {rounds}")
        super().__init__(name or f"cross_verify({a.name},{b.name})", (a, b))
        self.a, self.b, self.rounds, self.key = a, b, rounds, key

    def _generate(self, request: Request) -> Completion:
        ans_a, ans_b = in_parallel(
            partial(self.a.generate, request, role="a"), partial(self.b.generate, request, role="b")
        )
        for r in range(1, self.rounds + 1):
            if self._agree(ans_a, ans_b):
                return decided(ans_b, f"cross_verify: agreed after {r - 1} reconsideration rounds")
            ans_a, ans_b = in_parallel(
                partial(
                    self.a.generate, ask(request, "reconsider", own=ans_a.text, other=ans_b.text), role=f"a round {r}"
                ),
                partial(
                    self.b.generate, ask(request, "reconsider", own=ans_b.text, other=ans_a.text), role=f"b round {r}"
                ),
            )
        if self._agree(ans_a, ans_b):
            return decided(ans_b, f"cross_verify: agreed after {self.rounds} reconsideration rounds")
        return decided(ans_b, f"cross_verify: still disagree after {self.rounds} rounds; {self.b.name} breaks the tie")

    def _agree(self, x: Completion, y: Completion) -> bool:
        kx, ky = answer_key(x.text, self.key), answer_key(y.text, self.key)
        return kx != "" and kx == ky


class Rank(Whole):
    """Every candidate answers; the judge scores each answer by mean token log-likelihood (one pass each)."""

    def __init__(self, candidates: Sequence[LanguageModel], judge: LanguageModel, *, name: str | None = None) -> None:
        if len(candidates) < 1:
            raise ValidationError("rank needs at least one candidate")
        super().__init__(name or f"rank({','.join(m.name for m in candidates)};{judge.name})", (*candidates, judge))
        self.candidates, self.judge = tuple(candidates), judge

    def _generate(self, request: Request) -> Completion:
        answers = in_parallel(
            *(partial(m.generate, request, role=f"candidate {i}") for i, m in enumerate(self.candidates))
        )
        scores = [token_confidence(self.judge, request, a.text).mean_logprob for a in answers]
        best = max(range(len(answers)), key=lambda i: (scores[i], -i))  # ties: the earlier candidate
        shown = ", ".join(f"{m.name} {s:.3f}" for m, s in zip(self.candidates, scores, strict=True))
        return decided(answers[best], f"rank: {self.candidates[best].name} best by {self.judge.name} ({shown})")
