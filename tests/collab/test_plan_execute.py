"""PlanExecute: plan validation, the retry and the planner's direct answer, steps in the trace, cost per stage."""

from __future__ import annotations

import pytest

from tandemlm.collab.pipeline import PlanExecute, parse_plan
from tandemlm.errors import ValidationError
from tandemlm.models.scripted import ScriptedModel
from tandemlm.trace import Recorder
from tandemlm.types import Chunk, Price

PLAN = '{"steps": ["find the price of one", "multiply by three"]}'


def test_parse_plan_accepts_a_fenced_plan_and_names_what_is_wrong() -> None:
    assert parse_plan(f"Here:\n```json\n{PLAN}\n```", 4) == (["find the price of one", "multiply by three"], "")
    assert parse_plan("no plan", 4) == (None, "no JSON object in the planner's answer")
    assert parse_plan("{steps: [1]}", 4)[1].startswith("the plan is not JSON")
    assert "is too long" in parse_plan('{"steps": ["a", "b", "c"]}', 2)[1]
    assert "should be non-empty" in parse_plan('{"steps": []}', 2)[1]
    assert "is not of type 'string'" in parse_plan('{"steps": [1]}', 2)[1]
    assert parse_plan('{"steps": ["  "]}', 2) == (None, "the plan has an empty step")


def test_plan_execute_runs_every_step_with_the_earlier_results_and_composes() -> None:
    planner = ScriptedModel(PLAN, name="planner", location="cloud", price=Price(1.0, 1.0))
    executor = ScriptedModel(["2 dollars", "def total():\n    return 6"], name="executor")
    composer = ScriptedModel("The answer is 6.", name="composer")
    with Recorder() as rec:
        out = PlanExecute(planner, executor, composer).generate("Three pens at 2 dollars each?")
    assert out.text == "The answer is 6."
    step2 = executor.requests[1].messages[-1].content
    assert "1. find the price of one\n   → 2 dollars" in step2
    assert step2.endswith("Do only this step, briefly: multiply by three")
    # a result keeps its lines (code stays code), indented under its step
    assert "2. multiply by three\n   → def total():\n         return 6" in composer.requests[0].messages[-1].content
    assert [e.role for e in rec.events] == ["planner", "step 1", "step 2", "composer", "model"]
    cost = planner.price.cost(rec.events[0].usage)
    assert out.decision == f"plan_execute: 2 steps; planner ${cost:.6f}, executor $0.000000, composer $0.000000"


def test_a_malformed_plan_is_asked_for_once_more() -> None:
    planner = ScriptedModel(["I would first...", PLAN], name="planner")
    executor = ScriptedModel("x", name="executor")
    with Recorder() as rec:
        out = PlanExecute(planner, executor, ScriptedModel("done", name="composer")).generate("q")
    assert out.text == "done" and len(planner.requests) == 2
    assert [e.role for e in rec.events][:2] == ["planner", "planner retry"]


def test_two_malformed_plans_and_the_planner_answers_directly() -> None:
    planner = ScriptedModel(["not a plan", '{"steps": []}', "The answer is 6."], name="planner")
    executor, composer = ScriptedModel("x", name="executor"), ScriptedModel("y", name="composer")
    with Recorder() as rec:
        out = PlanExecute(planner, executor, composer).generate("Three pens at 2 dollars each?")
    assert out.text == "The answer is 6." and executor.requests == [] and composer.requests == []
    assert planner.requests[2].messages[-1].content == "Three pens at 2 dollars each?"  # the request itself
    assert [e.role for e in rec.events] == ["planner", "planner retry", "planner direct", "model"]
    assert out.decision is not None and out.decision.startswith("plan_execute: no valid plan after 2 attempts (")
    assert "should be non-empty" in out.decision


def test_the_composers_answer_streams_with_the_decision_on_its_last_chunk() -> None:
    planner = ScriptedModel('{"steps": ["one"]}', name="planner")
    composer = ScriptedModel("abc", name="composer")
    chunks: list[Chunk] = list(PlanExecute(planner, ScriptedModel("r", name="e"), composer).stream("q"))
    assert [c.text for c in chunks] == ["a", "b", "c", ""]
    final = chunks[-1].completion
    assert final is not None and final.decision is not None and final.decision.startswith("plan_execute: 1 steps")


def test_plan_requests_are_bounded() -> None:
    planner = ScriptedModel('{"steps": ["a", "b", "c"]}', name="planner")
    out = PlanExecute(planner, ScriptedModel("r"), ScriptedModel("c"), max_steps=2).generate("q")
    assert "is too long" in (out.decision or "")
    assert '{"steps": ["first step"' in planner.requests[0].messages[-1].content
    assert planner.requests[0].params.max_tokens == 192
    with pytest.raises(ValidationError):
        PlanExecute(planner, planner, planner, max_steps=0)
