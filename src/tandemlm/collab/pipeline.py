"""Sequential cooperation (HuggingGPT, ZeroNL2SQL): a planner splits the request into steps, an executor solves each
step with the earlier results, a composer writes the answer.

The plan is JSON, `{"steps": ["...", ...]}`, checked against `PLAN_SCHEMA`; a planner that decodes under a grammar
(llama.cpp) is held to it while decoding. A plan that does not parse or validate is asked for once more; a second
bad plan and the planner answers the request directly. Every stage is a traced call (roles "planner", "step N",
"composer"), and the decision gives each stage's cost. The composer's answer streams.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

from tandemlm.collab.base import decided, decided_stream
from tandemlm.collab.guidance import PromptLevel, capped
from tandemlm.collab.prompting import ask, usd
from tandemlm.errors import InvalidOutputError, ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.structured import schema_violation
from tandemlm.types import Chunk, Completion, Request, ResponseFormat


def plan_schema(max_steps: int) -> dict[str, object]:
    """The JSON Schema of a plan of 1 to `max_steps` non-empty steps."""
    step = {"type": "string", "minLength": 1}
    steps = {"type": "array", "items": step, "minItems": 1, "maxItems": max_steps}
    return {"type": "object", "properties": {"steps": steps}, "required": ["steps"], "additionalProperties": False}


def parse_plan(text: str, max_steps: int) -> tuple[list[str] | None, str]:
    """The plan's steps, or None with why the text is no valid plan (JSON found inside a code fence or prose is
    read too: a model without a grammar often wraps it)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None, "no JSON object in the planner's answer"
    try:
        value = json.loads(text[start : end + 1])
    except ValueError as err:
        return None, f"the plan is not JSON: {err}"
    why = schema_violation(value, json.dumps(plan_schema(max_steps)))
    if why is not None:
        return None, f"the plan breaks its schema {why}"
    steps = [s.strip() for s in value["steps"]]
    if not all(steps):
        return None, "the plan has an empty step"
    return steps, ""


@dataclass(frozen=True)
class Stage:
    """One traced stage of the pipeline and what it cost."""

    role: str
    completion: Completion


class PlanExecute(PromptLevel):
    """Planner → executor per step → composer. `max_steps` bounds the plan; `plan_tokens` and `step_tokens` bound
    the planner's and each step's answers."""

    def __init__(
        self,
        planner: LanguageModel,
        executor: LanguageModel,
        composer: LanguageModel,
        *,
        max_steps: int = 4,
        plan_tokens: int = 192,
        step_tokens: int = 192,
        name: str | None = None,
    ) -> None:
        if not 1 <= max_steps <= 16:
            raise ValidationError(f"max_steps must be in [1, 16], got {max_steps}")
        super().__init__(name or f"plan_execute({planner.name},{executor.name},{composer.name})",
                         (planner, executor, composer))  # fmt: skip
        self.planner, self.executor, self.composer = planner, executor, composer
        self.max_steps, self.plan_tokens, self.step_tokens = max_steps, plan_tokens, step_tokens

    def plan(self, request: Request) -> tuple[list[str] | None, list[Stage], str]:
        """Ask for a plan, once more when it is invalid; (steps or None, the planner's stages, the last problem)."""
        asked = ask(request, "plan", max_tokens=self.plan_tokens, max_steps=str(self.max_steps))
        if self.planner.constrained:  # decode under the plan's grammar
            schema = json.dumps(plan_schema(self.max_steps))
            asked = replace(asked, params=replace(asked.params, response_format=ResponseFormat("json_schema", schema)))
        stages: list[Stage] = []
        why = ""
        for attempt in (1, 2):
            role = "planner" if attempt == 1 else "planner retry"
            try:
                out = self.planner.generate(asked, role=role)
            except InvalidOutputError as err:
                why = str(err)
                continue
            stages.append(Stage(role, out))
            steps, why = parse_plan(out.text, self.max_steps)
            if steps is not None:
                return steps, stages, ""
        return None, stages, why

    def _run(self, request: Request) -> tuple[LanguageModel, Request, str, str, list[Stage]]:
        steps, stages, why = self.plan(request)
        if steps is None:
            why = f"plan_execute: no valid plan after 2 attempts ({why[:200]}); the planner answers directly"
            return self.planner, request, "planner direct", why, stages
        results: list[str] = []
        for i, step in enumerate(steps, 1):
            earlier = "\n".join(results) or "(none yet)"
            asked = capped(ask(request, "step", results=earlier, step=step), self.step_tokens)
            out = self.executor.generate(asked, role=f"step {i}")
            stages.append(Stage(f"step {i}", out))
            # the result keeps its lines (code stays code), indented under its step
            results.append(f"{i}. {step}\n   → " + out.text.strip().replace("\n", "\n     "))
        final = ask(request, "compose", results="\n".join(results))
        plan_cost = sum(s.completion.cost_usd for s in stages if s.role.startswith("planner"))
        step_cost = sum(s.completion.cost_usd for s in stages if s.role.startswith("step"))
        why = (
            f"plan_execute: {len(steps)} steps; planner {usd(plan_cost)}, executor {usd(step_cost)}, "
            f"composer {{composer}}"
        )
        return self.composer, final, "composer", why, stages

    def _generate(self, request: Request) -> Completion:
        model, final, role, why, _ = self._run(request)
        out = model.generate(final, role=role)
        return decided(out, why.replace("{composer}", usd(out.cost_usd)))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        model, final, role, why, _ = self._run(request)
        for chunk in model.stream(final, role=role):
            if chunk.completion is not None:
                yield from decided_stream([chunk], why.replace("{composer}", usd(chunk.completion.cost_usd)))
            else:
                yield chunk
