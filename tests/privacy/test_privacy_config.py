"""The `privacy:` block of a pipeline: validation, references, and what `Runtime.pipeline` builds."""

from __future__ import annotations

import pytest

from tandemlm import Runtime, ScriptedModel
from tandemlm.config import load_config, parse_config
from tandemlm.errors import ConfigError
from tandemlm.privacy import PiiGatekeeper

MODELS = """
models:
  small: {engine: scripted, replies: "edge", location: edge}
  big: {engine: scripted, replies: "Hi <EMAIL_1>", location: cloud}
"""


def test_the_pipeline_is_wrapped_and_keeps_pii_off_the_cloud() -> None:
    cfg = parse_config(MODELS + "pipelines:\n  p: {model: big, fallback: small, privacy: {detectors: [regex]}}")
    big = ScriptedModel("Hi <EMAIL_1>", name="big", location="cloud")
    runtime = Runtime(cfg, models={"big": big})
    model = runtime.pipeline("p")
    assert isinstance(model, PiiGatekeeper) and model.name == "p"
    assert model.generate("mail ann@example.com").text == "Hi ann@example.com"
    assert big.requests[0].messages[0].content == "mail <EMAIL_1>"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{edge: nope}", "pipelines.p.privacy.edge: 'nope' is not defined"),
        ("{edge: big}", "pipelines.p.privacy.edge: 'big' is located in the cloud; the gatekeeper hands it unmasked"),
        ("{edge: big, detectors: [slm]}", "edge-located models: small"),
        ("{mode: guardian}", "privacy.edge must name the edge model"),
        ("{detectors: [slm]}", "privacy.edge must name the edge model"),
        ("{entities: {CREDIT_CARD: route_local}}", "privacy.edge must name the edge model"),
        ("{entities: {SHOE_SIZE: block}}", "unknown entity types ['SHOE_SIZE']"),
        ("{policy: shred}", "privacy.policy"),
        ("{detectors: [spacy]}", "privacy.detectors.0"),
        ("{fail: open}", "privacy.fail"),
        ("{typo: 1}", "privacy.typo"),
    ],
)
def test_invalid_blocks_name_the_key(block: str, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid config") as err:
        parse_config(MODELS + f"pipelines:\n  p: {{model: big, privacy: {block}}}")
    assert message in str(err.value)


def test_packaged_configs_have_a_private_pipeline() -> None:
    for name in ("tiny", "default"):
        spec = load_config(name).pipelines["private-cloud"]
        assert spec.privacy is not None and spec.privacy.edge == "edge" and spec.privacy.fail == "closed"


def test_an_openai_endpoint_on_the_device_may_be_the_edge() -> None:
    local = "  lan: {engine: openai, model: m, base_url: 'http://127.0.0.1:8080/v1', location: edge}\n"
    cfg = parse_config(MODELS + local + "pipelines:\n  p: {model: big, privacy: {edge: lan, mode: guardian}}")
    assert cfg.pipelines["p"].privacy is not None and cfg.pipelines["p"].privacy.edge == "lan"
    with pytest.raises(ConfigError, match=r"pipelines\.p\.privacy\.edge: 'web' is located in the cloud"):
        parse_config(MODELS + "  web: {engine: openai, model: m, base_url: 'https://api.example.test/v1'}\n"
                     "pipelines:\n  p: {model: big, privacy: {edge: web}}")  # fmt: skip
