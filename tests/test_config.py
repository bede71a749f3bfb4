"""Pipeline files: validation errors point at the key; the runtime builds and reuses models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandemlm import Runtime, ScriptedModel, load_config
from tandemlm.config import parse_config
from tandemlm.errors import ConfigError, ModelNotFoundError

SCRIPTED = """
models:
  small: {engine: scripted, replies: "edge answer", location: edge}
  big: {engine: scripted, replies: "cloud answer", location: cloud, price: {input: 1.0, output: 2.0}}
pipelines:
  edge: {model: small}
  cloud: {model: big, description: the cloud alone}
default_pipeline: cloud
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: {a: {engine: llamacpp}}\npipelines: {p: {model: a}}", r"models\.a\.source: Field required"),
        ("models: {a: {engine: scripted, tempo: 1}}\npipelines: {p: {model: a}}", r"models\.a\.tempo: Extra inputs"),
        ("models: {a: {engine: gpt}}\npipelines: {p: {model: a}}", r"models\.a: .*'llamacpp', 'hf', 'openai'"),
        (
            "models: {a: {engine: scripted}}\npipelines: {p: {model: b}}",
            r"pipelines\.p\.model: 'b' is not defined; known: a",
        ),
        ("models: {a: {engine: scripted}}\npipelines: {p: {model: a}}\ndefault_pipeline: q", r"default_pipeline: 'q'"),
        ("models: {a: {engine: scripted, price: {input: -1}}}\npipelines: {p: {model: a}}", r"models\.a\.price\.input"),
        ("models: {a: {engine: scripted, location: mars}}\npipelines: {p: {model: a}}", r"models\.a\.location"),
        ("models: {}\npipelines: {}", "at least one pipeline"),
        ("models: {a: {engine: scripted}}\npipelines: {p: {}}", "either a model or a strategy"),
        (
            "models: {a: {engine: scripted}}\n"
            "pipelines: {p: {model: a, strategy: {speculative: {draft: a, target: a}}}}",
            "either a model or a strategy",
        ),
        (
            "models: {a: {engine: scripted}}\npipelines: {p: {strategy: {}}}",
            "name exactly one strategy, one of: speculative",
        ),
        (
            "models: {a: {engine: scripted}}\npipelines: {p: {strategy: {ensemble: {}}}}",
            r"strategy\.ensemble: Extra inputs",
        ),
        (
            "models: {a: {engine: scripted}}\npipelines: {p: {strategy: {cascade: {small: a, large: a}}}}",
            r"strategy\.cascade\.threshold: Field required",
        ),
        (
            "models: {a: {engine: scripted}}\n"
            "pipelines: {p: {strategy: {cascade: {small: a, large: a, threshold: 0.5, signal: vibes}}}}",
            r"strategy\.cascade\.signal: Input should be",
        ),
        (
            "models: {a: {engine: scripted}}\npipelines: {p: {strategy: {speculative: {draft: a, target: b}}}}",
            r"pipelines\.p\.strategy\.speculative\.target: 'b' is not defined",
        ),
        (
            "models: {a: {engine: scripted}}\npipelines: {p: {strategy: {speculative: {draft: a, target: a, k: 0}}}}",
            r"strategy\.speculative\.k: Input should be greater",
        ),
        (
            "models: {e: {engine: scripted}, cloud: {engine: scripted, location: cloud}}\n"
            "pipelines: {private-cloud: {model: cloud, privacy: {edge: cloud, mode: disclosure}}}",
            r"invalid config:\n  pipelines\.private-cloud\.privacy\.edge: 'cloud' is located in the cloud; "
            r"the gatekeeper hands it unmasked text .*; edge-located models: e$",
        ),
        ("pipelines: {p: {model: a}}", r"models: Field required"),
        ("- a list", "expected a mapping"),
        ("models: [", "not valid YAML"),
    ],
)
def test_errors_name_the_file_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(text, "my.yaml")
    assert str(info.value).startswith("my.yaml")


def test_packaged_configs_load() -> None:
    default = load_config("default")
    pipelines = {"edge", "cloud", "speculative", "token-routing", "cascade", "private-cloud", "super-icl", "guided-cot",
                 "hinted", "llm-guided", "vote", "cross-verify", "rank", "plan-execute", "guarded-cloud",
                 "verified-cloud"}  # fmt: skip
    assert default.default == "edge" and set(default.pipelines) == pipelines | {"fusion", "contrastive"}
    assert default.models["cloud"].location == "cloud" and default.models["cloud"].price.output == 0.6
    tiny = load_config("tiny")
    assert tiny.models["edge"].source == "catalog:smollm2-135m"  # type: ignore[union-attr]
    # tiny keeps one pipeline per family of mechanisms (a client can try every pipeline of it within seconds)
    assert set(tiny.pipelines) == pipelines - {"hinted", "llm-guided", "cross-verify", "rank"}


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_runtime_builds_each_model_once_and_answers(tmp_path: Path) -> None:
    path = tmp_path / "pipes.yaml"
    path.write_text(SCRIPTED)
    runtime = Runtime(load_config(path))
    model = runtime.pipeline()
    assert isinstance(model, ScriptedModel) and model.name == "big" and model.location == "cloud"
    assert runtime.pipeline("cloud") is model
    c = model.generate("hi")
    assert c.text == "cloud answer" and c.cost_usd == pytest.approx((2 * 1.0 + 12 * 2.0) / 1e6)
    assert runtime.pipeline("edge").generate("hi").text == "edge answer"
    with pytest.raises(ModelNotFoundError, match="no pipeline named 'x'; known: edge, cloud"):
        runtime.pipeline("x")


def test_a_strategy_pipeline_is_built_from_its_models() -> None:
    from tandemlm.collab.speculative import SpeculativeDecoder

    config = parse_config(
        "models:\n  d: {engine: scripted}\n  t: {engine: scripted, location: cloud}\n"
        "pipelines:\n  spec: {strategy: {speculative: {draft: d, target: t, k: 3, adaptive: false}}}\n"
    )
    runtime = Runtime(config)
    spec = runtime.pipeline("spec")
    assert isinstance(spec, SpeculativeDecoder) and spec.name == "spec" and spec.k == 3 and not spec.adaptive
    assert spec.draft is runtime.model("d") and spec.target is runtime.model("t")


def test_token_routing_pipeline() -> None:
    from tandemlm.collab.token_routing import TokenRouter

    config = parse_config(
        "models:\n  e: {engine: scripted}\n  c: {engine: scripted, location: cloud}\n"
        "pipelines:\n  r: {strategy: {token_routing: {edge: e, cloud: c, threshold: 0.3, signal: entropy, span: 2}}}\n"
    )
    router = Runtime(config).pipeline("r")
    assert isinstance(router, TokenRouter) and (router.threshold, router.signal, router.span) == (0.3, "entropy", 2)


def test_tandem_threads_sets_every_llamacpp_models_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from tandemlm.errors import ValidationError

    runtime = Runtime(load_config("default"))  # two local llama.cpp models share the cores
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.delenv("TANDEM_THREADS", raising=False)
    assert runtime._share_of_cores() == 4
    monkeypatch.setenv("TANDEM_THREADS", "1")
    assert runtime._share_of_cores() == 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("TANDEM_THREADS", bad)
        with pytest.raises(ValidationError, match="TANDEM_THREADS must be a whole number"):
            runtime._share_of_cores()
