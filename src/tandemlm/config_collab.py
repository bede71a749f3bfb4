"""The pipeline-file specs of the performance collaborations (collab/guidance.py, ensemble.py, pipeline.py, tts.py,
fusion.py).

Each names its models by config name; `refs` lists the fields that hold model names (a string or a list of them),
so the config can check every reference; `build` makes the strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tandemlm.models.base import LanguageModel


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Build = Callable[[str], LanguageModel]


class SuperICLSpec(_Strict):
    """SuperICL: `small`'s prediction and confidence go into `large`'s prompt, which may override it."""

    small: str
    large: str
    small_tokens: int = Field(256, ge=1, description="most tokens of the small model's answer (open questions)")
    refs: ClassVar[tuple[str, ...]] = ("small", "large")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.guidance import SuperICL

        return SuperICL(model(self.small), model(self.large), small_tokens=self.small_tokens, name=name)


class GuidedCoTSpec(_Strict):
    """LM-Guided CoT: `guide` writes a rationale (or, style hint, a short plan), `answerer` answers with it."""

    guide: str
    answerer: str
    style: Literal["rationale", "hint"] = "rationale"
    guide_tokens: int | None = Field(None, ge=1, description="default 256 for a rationale, 96 for a hint")
    refs: ClassVar[tuple[str, ...]] = ("guide", "answerer")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.guidance import GuidedCoT

        return GuidedCoT(
            model(self.guide), model(self.answerer), style=self.style, guide_tokens=self.guide_tokens, name=name
        )


class LLMGuidedSpec(_Strict):
    """SynCID-style: `large` writes a task guide once per task (cached on disk), `small` answers with it."""

    large: str
    small: str
    task: str | None = Field(None, description="the task key; default: the request's system message")
    cache_dir: str | None = Field(None, description="where guides are cached (default $TANDEM_HOME/guides)")
    guide_tokens: int = Field(384, ge=1)
    refs: ClassVar[tuple[str, ...]] = ("large", "small")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.guidance import LLMGuided
        from tandemlm.models.sources import tandem_home

        cache = self.cache_dir or str(tandem_home() / "guides" / name)
        return LLMGuided(
            model(self.large), model(self.small), cache_dir=cache, task=self.task, guide_tokens=self.guide_tokens,
            name=name,
        )  # fmt: skip


class VoteSpec(_Strict):
    """A vote over `members` (strongest first: ties go to the earliest), `samples` answers each."""

    members: list[str] = Field(min_length=1)
    samples: int = Field(1, ge=1, le=16)
    key: Literal["number", "letter", "text", "code"] = "text"
    weighted: bool = Field(True, description="weight each answer by exp(mean token logprob) under its writer")
    temperature: float = Field(0.7, gt=0, le=2)
    refs: ClassVar[tuple[str, ...]] = ("members",)

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.ensemble import Vote

        if self.key == "code":  # it runs model-written code: never without the sandbox
            from tandemlm import sandbox

            sandbox.require()
        return Vote([model(m) for m in self.members], samples=self.samples, key=self.key, weighted=self.weighted,
                    temperature=self.temperature, name=name)  # fmt: skip


class CrossVerifySpec(_Strict):
    """Cross-verification: `a` and `b` reconsider on disagreement up to `rounds`; `b` (the larger) breaks a tie."""

    a: str
    b: str
    rounds: int = Field(2, ge=0, le=8)
    key: Literal["number", "letter", "text"] = "text"
    refs: ClassVar[tuple[str, ...]] = ("a", "b")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.ensemble import CrossVerify

        return CrossVerify(model(self.a), model(self.b), rounds=self.rounds, key=self.key, name=name)


class RankSpec(_Strict):
    """LLM-Blender's ranker: every candidate answers, `judge` picks the most likely answer."""

    candidates: list[str] = Field(min_length=1)
    judge: str
    refs: ClassVar[tuple[str, ...]] = ("candidates", "judge")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.ensemble import Rank

        return Rank([model(m) for m in self.candidates], model(self.judge), name=name)


class PlanExecuteSpec(_Strict):
    """HuggingGPT-style: `planner` writes a JSON plan, `executor` solves each step, `composer` answers."""

    planner: str
    executor: str
    composer: str
    max_steps: int = Field(4, ge=1, le=16)
    plan_tokens: int = Field(192, ge=16)
    step_tokens: int = Field(192, ge=1)
    refs: ClassVar[tuple[str, ...]] = ("planner", "executor", "composer")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.pipeline import PlanExecute

        return PlanExecute(
            model(self.planner), model(self.executor), model(self.composer), max_steps=self.max_steps,
            plan_tokens=self.plan_tokens, step_tokens=self.step_tokens, name=name,
        )  # fmt: skip


class TTSSpec(_Strict):
    """Compute-optimal test-time scaling: an allocation fitted on train (`tandem bench collab --tts-save`) picks
    per query among small, small votes, small + large verification, large, large + small votes, within `cap`."""

    small: str
    large: str
    allocation: str = Field(
        description="a fitted allocation (.json); a relative path is read from the working directory"
    )
    samples: int = Field(4, ge=2, le=16)
    key: Literal["number", "letter", "text"] = "text"
    cap: float | None = Field(None, ge=0, description="most one query may spend (default: the allocation's budget)")
    refs: ClassVar[tuple[str, ...]] = ("small", "large")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.tts import Allocation, ComputeOptimal

        allocation = Allocation.load(self.allocation)
        return ComputeOptimal(model(self.small), model(self.large), allocation, samples=self.samples, key=self.key,
                              cap=self.cap, name=name)  # fmt: skip


class FusionSpec(_Strict):
    """Logit fusion (collab/fusion.py): each token from log-softmax(Σ weight · member logprobs), one vocabulary."""

    members: list[str] = Field(min_length=1)
    weights: list[float] | None = Field(None, description="non-negative, one per member (default equal)")
    trace_tokens: int = Field(16, ge=0, le=256, description="tokens whose contributions the trace lists")
    refs: ClassVar[tuple[str, ...]] = ("members",)

    @model_validator(mode="after")
    def _weights(self) -> FusionSpec:
        if self.weights is not None and len(self.weights) != len(self.members):
            raise ValueError(f"{len(self.members)} members but {len(self.weights)} weights")
        if self.weights is not None and (any(w < 0 for w in self.weights) or sum(self.weights) <= 0):
            raise ValueError("weights must be non-negative with a positive sum")
        return self

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.fusion import LogitFusion

        return LogitFusion([model(m) for m in self.members], self.weights, name=name, trace_tokens=self.trace_tokens)


class ProxyTunedSpec(_Strict):
    """Proxy-tuning: `large` + alpha · (`tuned_small` − `base_small`) in log-probabilities, token by token."""

    large: str
    tuned_small: str
    base_small: str
    alpha: float = Field(1.0, ge=-8, le=8)
    trace_tokens: int = Field(16, ge=0, le=256)
    refs: ClassVar[tuple[str, ...]] = ("large", "tuned_small", "base_small")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.fusion import ProxyTuned

        return ProxyTuned(model(self.large), model(self.tuned_small), model(self.base_small), alpha=self.alpha,
                          name=name, trace_tokens=self.trace_tokens)  # fmt: skip


class ContrastiveSpec(_Strict):
    """Contrastive decoding: tokens the `expert` gives >= alpha_mask · its top probability, scored
    (1 + beta) · expert − beta · `amateur`."""

    expert: str
    amateur: str
    beta: float = Field(0.5, ge=0, le=8)
    alpha_mask: float = Field(0.1, ge=0, le=1)
    trace_tokens: int = Field(16, ge=0, le=256)
    refs: ClassVar[tuple[str, ...]] = ("expert", "amateur")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.fusion import Contrastive

        return Contrastive(model(self.expert), model(self.amateur), beta=self.beta, alpha_mask=self.alpha_mask,
                           name=name, trace_tokens=self.trace_tokens)  # fmt: skip


class SafetyGuidedSpec(_Strict):
    """Safety-guided decoding: `model` + alpha · (`safe_small` − `base_small`) for the first `first_m` answer tokens
    (null: all of them), then `model` alone."""

    model: str
    safe_small: str
    base_small: str
    alpha: float = Field(1.0, ge=-8, le=8)
    first_m: int | None = Field(2, ge=0, description="guided answer tokens; null guides every token")
    trace_tokens: int = Field(16, ge=0, le=256)
    refs: ClassVar[tuple[str, ...]] = ("model", "safe_small", "base_small")

    def build(self, model: Build, name: str) -> LanguageModel:
        from tandemlm.collab.fusion import SafetyGuided

        return SafetyGuided(model(self.model), model(self.safe_small), model(self.base_small), alpha=self.alpha,
                            first_m=self.first_m, name=name, trace_tokens=self.trace_tokens)  # fmt: skip


CollabSpec = (
    SuperICLSpec
    | GuidedCoTSpec
    | LLMGuidedSpec
    | VoteSpec
    | CrossVerifySpec
    | RankSpec
    | PlanExecuteSpec
    | TTSSpec
    | FusionSpec
    | ProxyTunedSpec
    | ContrastiveSpec
    | SafetyGuidedSpec
)
