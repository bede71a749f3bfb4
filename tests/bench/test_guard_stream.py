"""The streamed-screening benchmark on scripted models and guards: its rows, medians and report."""

from __future__ import annotations

from pathlib import Path

from tandemlm.bench.guard_stream import render, run

CONFIG = """
models:
  cloud: {engine: scripted, replies: "%s", location: cloud}
guards:
  words: {type: scripted, words: [bomb]}
pipelines:
  guarded: {model: cloud, guard: {input: words, output: words, window: 20, overlap: 5}}
"""


def test_rows_medians_and_report(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG % ("x" * 50))
    result = run(str(path), "guarded", max_tokens=64, prompts=2)
    assert [r["windows"] for r in result["rows"]] == [3, 3]  # 50 characters: windows at 0, 15, 30
    assert all(r["chars"] == 50 and r["finish"] == "stop" for r in result["rows"])
    assert result["median_window_ms"] is not None and result["median_window_ms"] >= 0
    text = render(result, "python -m tandemlm.bench.guard_stream")
    assert "`python -m tandemlm.bench.guard_stream`" in text and "| guard latency per window (ms) |" in text
