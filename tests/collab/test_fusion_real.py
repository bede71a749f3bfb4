"""The fused decoders on SmolLM2-135M (both roles of the tiny config) through `tandem run`, and exact identities on
the real model: fusing a model with itself is the model, a zero offset (tuned = base) leaves the large model alone.
(The gateway's test is tests/server/test_fusion_gateway_real.py.)

These pipelines test the wiring only (two copies of one model), so they live here, not in the packaged tiny config.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tandemlm.cli import main

pytestmark = pytest.mark.slow

#: pipeline -> (its strategy block, the start of its decision, the roles its trace holds)
FUSED: dict[str, tuple[dict[str, object], str, set[str]]] = {
    "fusion": ({"fusion": {"members": ["edge", "cloud"], "weights": [0.5, 0.5]}}, "fusion: weights=edge:0.5,cloud:0.5",
               {"edge", "cloud"}),
    "contrastive": ({"contrastive": {"expert": "cloud", "amateur": "edge", "beta": 0.5}}, "contrastive: beta=0.5",
                    {"expert", "amateur"}),
    "proxy-tuned": ({"proxy_tuned": {"large": "cloud", "tuned_small": "edge", "base_small": "edge"}},
                    "proxy_tuned: alpha=1", {"large", "tuned"}),
    "safety-guided": ({"safety_guided": {"model": "cloud", "safe_small": "edge", "base_small": "edge", "first_m": 2}},
                      "safety_guided: alpha=1 first_m=2", {"model", "safe"}),
}  # fmt: skip


def fused_yaml() -> str:
    """The tiny config's models (one thread each) and single-model pipelines, and one fused pipeline per kind over
    its two SmolLM2 copies (no guards or gatekeeper: a gateway loads every pipeline's parts before it is ready)."""
    config = yaml.safe_load(resources.files("tandemlm.data").joinpath("tiny.yaml").read_text(encoding="utf-8"))
    for model in config["models"].values():
        model["n_threads"] = 1
    config["pipelines"] = {name: config["pipelines"][name] for name in ("edge", "cloud")}
    config.pop("guards", None)
    config.pop("default_guard", None)
    for name, (strategy, _, _) in FUSED.items():
        config["pipelines"][name] = {"strategy": strategy}
    return yaml.safe_dump(config, sort_keys=False)


def test_fused_pipelines_answer_through_tandem_run(smollm2_path: str, tmp_path: Path) -> None:
    config = tmp_path / "fused.yaml"
    config.write_text(fused_yaml(), encoding="utf-8")
    for pipeline in ("fusion", "proxy-tuned"):  # all four: the gateway's test (one model load)
        _, decision, roles = FUSED[pipeline]
        result = CliRunner().invoke(
            main, ["run", "-c", str(config), "-p", pipeline, "--max-tokens", "6", "--json", "What is 2 plus 3?"]
        )
        assert result.exit_code == 0, (pipeline, result.output)
        out = json.loads(result.output)
        assert out["text"] and out["decision"].startswith(decision), (pipeline, out["decision"])
        assert "left the device: token ids only, to cloud" in out["decision"]
        assert roles <= {e["role"] for e in out["trace"]}, (pipeline, [e["role"] for e in out["trace"]])
        assert next(json.loads(e["egress"]).keys() for e in out["trace"] if e["location"] == "cloud") == {"tokens"}
    streamed = CliRunner().invoke(
        main, ["run", "-c", str(config), "-p", "contrastive", "--max-tokens", "6", "--trace", "Hi"]
    )
    assert streamed.exit_code == 0 and "expert" in streamed.output and "contrastive: beta=0.5" in streamed.output


def test_identities_on_the_real_model(smollm2_path: str) -> None:
    """The fused distribution on a real vocabulary: a model fused with an identical copy is the model (to float
    rounding), and proxy-tuning with tuned = base is the large model's own greedy text; JSON under a grammar."""
    import numpy as np

    from tandemlm.collab.fusion import LogitFusion, ProxyTuned
    from tandemlm.models.llamacpp import LlamaCppModel
    from tandemlm.trace import Recorder
    from tandemlm.types import Request, ResponseFormat

    # one thread each: on a shared, loaded CPU more threads per handle decode many times slower
    smollm2 = LlamaCppModel(smollm2_path, name="smollm2", n_ctx=1024, n_threads=1)
    copy = LlamaCppModel(smollm2_path, name="copy", n_ctx=1024, n_threads=1)
    try:
        request = Request.of("Name a colour.", max_tokens=8)
        prompt = smollm2.prompt_tokens(request)
        fused = LogitFusion([smollm2, copy], [0.5, 0.5])
        np.testing.assert_allclose(
            np.exp(fused.next_token_logprobs(prompt).dense()), np.exp(smollm2.next_token_logprobs(prompt).dense()),
            atol=1e-5,
        )  # fmt: skip
        greedy: list[int] = []
        while len(greedy) < 8 and not smollm2.is_end_token(t := smollm2.next_token_logprobs(prompt + greedy).argmax()):
            greedy.append(t)
        proxy = ProxyTuned(smollm2, copy, copy, alpha=1.0)
        with Recorder() as rec:
            assert proxy.generate(request).text == smollm2.detokenize(greedy)
        assert sum(e.model == "copy" for e in rec.events) == proxy.last_stats.steps  # named twice, asked once a step
        schema = (
            '{"type": "object", "properties": {"colour": {"type": "string", "maxLength": 12}}, "required": ["colour"]}'
        )
        structured = Request.of("Name a colour as JSON.", max_tokens=24,
                                response_format=ResponseFormat("json_schema", schema))  # fmt: skip
        answer = fused.generate(structured)
        assert set(json.loads(answer.text)) == {"colour"}
    finally:
        smollm2.close()
        copy.close()
