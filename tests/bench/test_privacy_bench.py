"""The privacy benchmark's scoring and its leakage run, on scripted models (the real run is `tandem bench privacy`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tandemlm import Runtime
from tandemlm.bench import pii_data
from tandemlm.bench.privacy import leakage_bench, masking_bench, score_detection
from tandemlm.cli import main
from tandemlm.config import parse_config
from tandemlm.errors import ModelSourceError
from tandemlm.privacy import Detector, PatternDetector
from tandemlm.privacy.spans import Span, span_at

CONFIG = """
models:
  edge: {engine: scripted, replies: "The answer is 18.", location: edge}
  cloud: {engine: scripted, replies: "The answer is 18.", location: cloud}
pipelines:
  cloud: {model: cloud}
"""


class Fixed(Detector):
    def __init__(self, spans: list[Span]) -> None:
        self.spans = spans

    def detect(self, text: str) -> list[Span]:
        return self.spans


def test_detection_scores_overlap_by_type_and_masked_coverage() -> None:
    text = "Ann Lee at ann@example.com in Paris, 12 Rue X"
    gold = (span_at(text, 0, 7, "PERSON", "gold"), span_at(text, 11, 26, "EMAIL", "gold"),
            span_at(text, 30, 35, "LOCATION", "gold"))  # fmt: skip
    sample = pii_data.Sample(text, gold, ((37, 45),))
    predicted = [span_at(text, 0, 3, "PERSON"), span_at(text, 11, 26, "EMAIL"), span_at(text, 30, 35, "PERSON"),
                 span_at(text, 40, 45, "LOCATION")]  # fmt: skip
    scores = score_detection([sample], Fixed(predicted))
    assert scores["PERSON"] == {"precision": 0.5, "recall": 1.0, "f1": 0.667, "masked": 0.0, "support": 1}
    assert scores["EMAIL"]["f1"] == 1.0 and scores["LOCATION"]["recall"] == 0.0  # typed wrong: a miss ...
    assert scores["LOCATION"]["masked"] == 1.0 and scores["LOCATION"]["precision"] == 0.0  # ... but masked
    assert scores["all"]["support"] == 3 and scores["all"]["masked"] == round(2 / 3, 3)


@pytest.mark.slow  # loads spaCy (about 2 s)
def test_masking_counts_what_the_gatekeeper_leaves_by_type(dataset: Callable[[str], object]) -> None:
    dataset("gsm8k")
    counts = masking_bench(3, 0)
    assert list(counts) == ["PERSON", "EMAIL", "PHONE", "CREDIT_CARD"]
    assert all(c["inserted"] == 3 for c in counts.values())
    assert sum(counts[t]["leaked"] for t in ("EMAIL", "PHONE", "CREDIT_CARD")) == 0  # validated patterns


@pytest.mark.slow  # loads spaCy (about 2 s)
def test_leakage_per_policy_on_scripted_models(dataset: Callable[[str], object], tmp_path: Path) -> None:
    dataset("gsm8k")  # skips when the dataset is not cached
    runtime = Runtime(parse_config(CONFIG))
    rows = leakage_bench(runtime, "edge", "cloud", 2, 32, 0, ["none", "pseudonymize", "route_local", "block"])
    by = {r["policy"]: r for r in rows}
    assert by["none"]["leak_rate"] == 1.0 and by["none"]["inserted"] == 8 and by["none"]["cloud_calls"] == 2
    assert by["pseudonymize"]["leaked"] == 0 and by["pseudonymize"]["cloud_calls"] == 2
    assert by["route_local"]["cloud_calls"] == 0 and by["block"]["refused"] == 2
    assert by["pseudonymize"]["utility"] == by["route_local"]["utility"] == 1.0  # same scripted answer


@pytest.mark.slow
def test_bench_privacy_command_end_to_end(dataset: Callable[[str], object], tmp_path: Path) -> None:
    dataset("gsm8k")
    try:
        pii_data.member("templates.txt", fetch=False)
    except ModelSourceError as err:
        if os.environ.get("CI"):
            pytest.fail(str(err))
        pytest.skip(str(err))
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    out, js = tmp_path / "privacy.md", tmp_path / "privacy.json"
    args = ["bench", "privacy", "-c", str(config), "--items", "2", "--sentences", "20", "--policies",
            "none,pseudonymize,guardian", "--out", str(out), "--json", str(js)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(js.read_text())
    assert [r["policy"] for r in data["leakage"]] == ["none", "pseudonymize", "guardian"]
    assert data["detection"]["sentences"] == 20 and "CREDIT_CARD" in json.dumps(data["detection"])
    assert "## Leakage vs utility" in out.read_text() and data["latency"]["requests"] > 0
    assert PatternDetector().detect(data["command"]) == []
