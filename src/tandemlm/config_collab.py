"""The pipeline-file specs of the performance collaborations (collab/guidance.py, ensemble.py, pipeline.py, tts.py).

Each names its models by config name; `refs` lists the fields that hold model names (a string or a list of them),
so the config can check every reference; `build` makes the strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

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


CollabSpec = (
    SuperICLSpec | GuidedCoTSpec | LLMGuidedSpec | VoteSpec | CrossVerifySpec | RankSpec | PlanExecuteSpec | TTSSpec
)
