"""The performance collaborations on the tiny real config (SmolLM2-135M in both roles) through `tandem run` (the
gateway's test is tests/server/test_collab_gateway_real.py)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tandemlm.cli import main

pytestmark = pytest.mark.slow

#: pipeline -> (prompt, the start of its decision, roles its trace must hold)
CASES: dict[str, tuple[str, str, set[str]]] = {
    "super-icl": ("Which is a colour?\n\nA. dog\nB. red\nC. car\nD. sky", "super_icl: small predicted", {"large"}),
    "guided-cot": ("What is 2 plus 3?", "guided_cot: edge wrote a rationale", {"guide", "answer"}),
    "hinted": ("What is 2 plus 3?", "guided_cot: cloud wrote a hint", {"guide", "answer"}),
    "llm-guided": ("What is 2 plus 3?", "llm_guided: task guide written now", {"guide", "answer"}),
    "vote": ("What is 2 plus 3?", "vote: ", {"member 0", "member 1 sample 1"}),
    "cross-verify": ("What is 2 plus 3?", "cross_verify: ", {"a", "b"}),
    "rank": ("Name a colour.", "rank: ", {"candidate 0", "candidate 1"}),
    "plan-execute": ("What is 2 plus 3, times 4?", "plan_execute: ", {"planner"}),
}
STREAMED = ("super-icl", "guided-cot", "hinted", "llm-guided", "plan-execute")


def tiny_yaml(cache: Path) -> str:
    """The tiny config with the LLM-guided pipeline's guides cached under `cache` and one thread per model."""
    config = yaml.safe_load(resources.files("tandemlm.data").joinpath("tiny.yaml").read_text(encoding="utf-8"))
    for model in config["models"].values():
        model["n_threads"] = 1
    # the pipelines the packaged tiny config leaves out (it keeps one per family of mechanisms)
    config["pipelines"]["hinted"] = {"strategy": {"guided_cot": {"guide": "cloud", "answerer": "edge", "style": "hint",
                                                                 "guide_tokens": 24}}}  # fmt: skip
    config["pipelines"]["llm-guided"] = {
        "strategy": {"llm_guided": {"large": "cloud", "small": "edge", "guide_tokens": 48, "cache_dir": str(cache)}}
    }
    config["pipelines"]["cross-verify"] = {"strategy": {"cross_verify": {"a": "edge", "b": "cloud", "rounds": 1}}}
    config["pipelines"]["rank"] = {"strategy": {"rank": {"candidates": ["edge", "cloud"], "judge": "cloud"}}}
    return yaml.safe_dump(config, sort_keys=False)


def test_every_collaboration_answers_through_tandem_run(smollm2_path: str, tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_yaml(tmp_path / "guides"), encoding="utf-8")
    for pipeline in ("super-icl", "llm-guided", "plan-execute"):  # all of them: the gateway's test (one model load)
        prompt, decision, roles = CASES[pipeline]
        result = CliRunner().invoke(
            main, ["run", "-c", str(config), "-p", pipeline, "--max-tokens", "8", "--json", prompt]
        )
        assert result.exit_code == 0, (pipeline, result.output)
        out = json.loads(result.output)
        assert out["decision"].startswith(decision), (pipeline, out["decision"])
        assert roles <= {e["role"] for e in out["trace"]}, (pipeline, [e["role"] for e in out["trace"]])
        assert any(e["location"] == "cloud" for e in out["trace"])
    assert len(list((tmp_path / "guides").glob("*.json"))) == 1
    streamed = CliRunner().invoke(
        main, ["run", "-c", str(config), "-p", "hinted", "--max-tokens", "8", "--trace", "Hi"]
    )
    assert streamed.exit_code == 0 and "guide" in streamed.output


def test_compute_optimal_on_smollm2_keeps_its_cap(smollm2: object, smollm2_path: str) -> None:
    """The TTS strategy on a real model in both roles (the large one priced): a planned large_vote whose worst case
    passes the cap gives way to the small models' vote; with room, the large model answers too."""
    from tandemlm.collab.tts import Allocation, ComputeOptimal
    from tandemlm.models.llamacpp import LlamaCppModel
    from tandemlm.trace import Recorder
    from tandemlm.types import Price, Request

    assert isinstance(smollm2, LlamaCppModel)
    large = LlamaCppModel(smollm2_path, name="large", location="cloud", price=Price(1e6, 1e6), n_ctx=1024, n_threads=1)
    try:
        request = Request.of("What is 2 plus 3?", max_tokens=8)
        for cap, arm in ((5.0, "small_vote"), (1e9, "large_vote")):
            tts = ComputeOptimal(smollm2, large, Allocation((), ("large_vote",), cap), samples=2, key="number")
            with Recorder() as rec:
                out = tts.generate(request)
            assert sum(e.cost_usd for e in rec.events if e.model == "large") <= cap
            assert out.decision is not None and out.decision.startswith("tts: confidence ")
            assert ("within the cap" in out.decision) == (arm != "large_vote") and f"{arm}" in out.decision
    finally:
        large.close()
