"""The performance collaborations in pipeline files: every packaged one builds, and specs are checked strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandemlm.collab.ensemble import CrossVerify, Rank, Vote
from tandemlm.collab.guidance import GuidedCoT, LLMGuided, SuperICL
from tandemlm.collab.pipeline import PlanExecute
from tandemlm.config import Runtime, load_config, parse_config
from tandemlm.errors import ConfigError
from tandemlm.models.scripted import ScriptedModel

KINDS = {
    "super-icl": SuperICL, "guided-cot": GuidedCoT, "hinted": GuidedCoT, "llm-guided": LLMGuided, "vote": Vote,
    "cross-verify": CrossVerify, "rank": Rank, "plan-execute": PlanExecute,
}  # fmt: skip
TINY_LEAVES_OUT = ("hinted", "llm-guided", "cross-verify", "rank")  # one per family in tiny; tests add them back


@pytest.mark.parametrize("packaged", ["tiny", "default"])
def test_packaged_collaborations_build_over_the_configs_models(packaged: str) -> None:
    models = {"edge": ScriptedModel("4", name="edge"), "cloud": ScriptedModel("4", name="cloud", location="cloud")}
    runtime = Runtime(load_config(packaged), models)
    kinds = KINDS if packaged == "default" else {n: k for n, k in KINDS.items() if n not in TINY_LEAVES_OUT}
    for name, kind in kinds.items():
        pipeline = runtime.pipeline(name)
        assert isinstance(pipeline, kind) and pipeline.name == name
    vote = runtime.pipeline("vote")
    samples = 2 if packaged == "default" else 1
    assert isinstance(vote, Vote) and [m.name for m in vote.members] == ["cloud", "edge"] and vote.samples == samples


def test_a_collaboration_answers_through_the_runtime(tmp_path: Path) -> None:
    text = f"""
models:
  e: {{engine: scripted, replies: "The answer is 4."}}
  c: {{engine: scripted, replies: "The answer is 4.", location: cloud, price: {{input: 1, output: 1}}}}
pipelines:
  x: {{strategy: {{cross_verify: {{a: e, b: c, rounds: 1, key: number}}}}}}
  g: {{strategy: {{llm_guided: {{large: c, small: e, task: sums, cache_dir: "{tmp_path}"}}}}}}
"""
    runtime = Runtime(parse_config(text))
    assert runtime.pipeline("x").generate("2+2?").decision == "cross_verify: agreed after 0 reconsideration rounds"
    assert runtime.pipeline("g").generate("2+2?").text == "The answer is 4." and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ("{vote: {members: [e, nope]}}", r"strategy\.vote\.members\.1: 'nope' is not defined"),
        ("{vote: {members: []}}", "at least 1 item"),
        ("{rank: {candidates: [e], judge: e, extra: 1}}", "Extra inputs are not permitted"),
        ("{guided_cot: {guide: e, answerer: e, style: essay}}", "'rationale' or 'hint'"),
        ("{plan_execute: {planner: e, executor: e, composer: e, max_steps: 0}}", "greater than or equal to 1"),
        ("{cross_verify: {a: e, b: e, rounds: -1}}", "greater than or equal to 0"),
    ],
)
def test_collaboration_specs_are_strict(strategy: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(f"models: {{e: {{engine: scripted}}}}\npipelines: {{p: {{strategy: {strategy}}}}}")


def test_a_tts_pipeline_reads_its_fitted_allocation(tmp_path: Path) -> None:
    from tandemlm.collab.tts import Allocation, ComputeOptimal

    Allocation((0.5,), ("large", "small"), 0.001).save(tmp_path / "alloc.json")
    text = f"""
models: {{e: {{engine: scripted}}, c: {{engine: scripted, location: cloud}}}}
pipelines:
  t: {{strategy: {{tts: {{small: e, large: c, allocation: "{tmp_path / "alloc.json"}", samples: 3, cap: 0.01}}}}}}
  bad: {{strategy: {{tts: {{small: e, large: c, allocation: "{tmp_path / "nope.json"}"}}}}}}
"""
    runtime = Runtime(parse_config(text))
    tts = runtime.pipeline("t")
    assert isinstance(tts, ComputeOptimal) and tts.allocation.arms == ("large", "small") and tts.cap == 0.01
    with pytest.raises(ConfigError, match="cannot read the TTS allocation"):
        runtime.pipeline("bad")
