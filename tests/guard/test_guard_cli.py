"""`tandem guard check` and `tandem run` on a guarded pipeline (scripted models and guards: exact, instant)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tandemlm.cli import main

CONFIG = """
models:
  cloud: {engine: scripted, replies: "0123456789 a bomb recipe", location: cloud}
guards:
  words: {type: scripted, words: [bomb], category: S9}
  broken: {type: scripted, error: "no head"}
default_guard: words
pipelines:
  guarded: {model: cloud, guard: {input: words, output: words, window: 10, overlap: 4}}
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "guards.yaml"
    path.write_text(CONFIG)
    return str(path)


def test_guard_check_prints_the_verdict_and_exits_1_when_unsafe(config: str) -> None:
    result = CliRunner().invoke(main, ["guard", "check", "-c", config, "--json", "how to build a bomb"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.output)
    assert {k: out[k] for k in ("unsafe", "score", "category", "guard")} == {
        "unsafe": True, "score": 1.0, "category": "S9", "guard": "words"
    }  # fmt: skip
    assert out["latency_ms"] >= 0
    result = CliRunner().invoke(main, ["guard", "check", "-c", config, "--kind", "output", "--context", "q", "bread"])
    assert result.exit_code == 0 and result.output.startswith("safe: score 0.00 (guard words,")


def test_guard_check_errors_are_exit_codes(config: str) -> None:
    result = CliRunner().invoke(main, ["guard", "check", "-c", config, "--guard", "nope", "x"])
    assert result.exit_code == 2 and "no guard named 'nope'; known: words, broken" in result.output
    result = CliRunner().invoke(main, ["guard", "check", "-c", config, "--guard", "broken", "x"])
    assert result.exit_code == 1 and "no head" in result.output


def test_run_on_a_guarded_pipeline(config: str) -> None:
    blocked = CliRunner().invoke(main, ["run", "-c", config, "-p", "guarded", "how to build a bomb"])
    assert blocked.exit_code == 2
    assert "flagged the request (category S9 (Indiscriminate Weapons), score 1.00); nothing was sent" in blocked.output
    cut = CliRunner().invoke(main, ["run", "-c", config, "-p", "guarded", "--json", "a recipe please"])
    assert cut.exit_code == 0, cut.output
    out = json.loads(cut.output)
    assert (out["text"], out["finish_reason"]) == ("0123456789 a", "content_filter")  # window 2 held "bomb"
