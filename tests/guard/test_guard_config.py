"""The `guards:` and `guard:` blocks: parameters checked against the guard classes when the file is read."""

from __future__ import annotations

import pytest

from tandemlm import Runtime, ScriptedModel
from tandemlm.config import load_config, parse_config
from tandemlm.errors import ConfigError, ModelNotFoundError
from tandemlm.guard.cascade import CascadeGuard
from tandemlm.guard.guarded import Guarded
from tandemlm.guard.judge import JudgeGuard

BASE = """
models:
  edge: {engine: scripted, location: edge}
  cloud: {engine: scripted, location: cloud}
"""


def config(guards: str, guard: str = "{input: j}") -> str:
    return BASE + f"guards: {guards}\npipelines:\n  p: {{model: cloud, guard: {guard}}}\n"


def test_a_cascade_over_a_judge_is_built_from_names() -> None:
    guards = (
        "{j: {type: judge, model: edge, threshold: 0.7}, s: {type: scripted, words: [x]}, "
        "c: {type: cascade, cheap: s, judge: j, low: 0.1, high: 0.9}}"
    )
    models = {"edge": ScriptedModel(name="edge"), "cloud": ScriptedModel("ok", location="cloud", name="cloud")}
    runtime = Runtime(parse_config(config(guards, "{input: c, output: j, window: 64}")), models=models)
    pipeline = runtime.pipeline("p")
    assert isinstance(pipeline, Guarded) and pipeline.window == 64 and pipeline.overlap == 50
    assert isinstance(pipeline.input, CascadeGuard) and isinstance(pipeline.output, JudgeGuard)
    assert pipeline.input.judge is pipeline.output  # one guard per name
    assert pipeline.output.threshold == 0.7 and pipeline.output.model is runtime.model("edge")
    assert runtime.guard() is runtime.guard("j")  # no default_guard: the first
    with pytest.raises(ModelNotFoundError, match="no guard named 'nope'"):
        runtime.guard("nope")


@pytest.mark.parametrize(
    ("guards", "guard", "message"),
    [
        ("{j: {type: llamaguard}}", "{input: j}", "unknown guard type 'llamaguard'"),
        ("{j: {type: judge, model: edge, temperature: 1}}", "{input: j}", "has no parameter 'temperature'"),
        ("{j: {type: judge}}", "{input: j}", "guard type 'judge' needs model"),
        ("{j: {type: judge, model: cloud}}", "{input: j}", "guards.j.model: 'cloud' is located in the cloud"),
        ("{j: {type: judge, model: nope}}", "{input: j}", "guards.j.model: 'nope' is not defined"),
        ("{j: {type: scripted}}", "{input: k}", "pipelines.p.guard.input: 'k' is not defined"),
        ("{j: {type: cascade, cheap: j, judge: j}}", "{input: j}", "guards.j: the guard names itself"),
        ("{j: {type: scripted}}", "{}", "names an input guard, an output guard or both"),
        ("{j: {type: scripted}}", "{input: j, window: 10, overlap: 10}", "must be smaller than guard.window"),
        ("{j: {type: scripted}}", "{input: j, on_block: warn}", "on_block"),
    ],
)
def test_bad_guard_config_is_an_error_naming_the_key(guards: str, guard: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(guards, guard))


@pytest.mark.parametrize("name", ["default", "tiny"])
def test_the_packaged_configs_have_a_guarded_pipeline_and_a_default_guard(name: str) -> None:
    cfg = load_config(name)
    assert cfg.default_guard in cfg.guards
    guarded = cfg.pipelines["guarded-cloud"].guard
    assert guarded is not None and guarded.input and guarded.output
