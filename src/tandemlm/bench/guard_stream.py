"""What screening a stream costs: the output guard's latency per window and the time to the first released
text, through a guarded pipeline against its inner model alone (issue 12's "streamed screening" numbers).

`python -m tandemlm.bench.guard_stream --config tiny --pipeline guarded-cloud` streams each prompt through
the inner model, then through the guarded pipeline (its input guard dropped, so only the output screening is
measured), and reports medians: the guard's latency per window (from the trace: each check is an event), the
time to the first released text with and without the guard, and the whole answer's time. Latencies are
wall-clock on this machine; the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tandemlm.config import Runtime, load_config
from tandemlm.guard.guarded import Guarded
from tandemlm.models.base import LanguageModel
from tandemlm.types import Request

#: benign prompts whose answers run over a few windows (latency only: no verdict is scored here)
PROMPTS = (
    "Explain how a bicycle's gears work.",
    "Describe the water cycle for a ten-year-old.",
    "Give three tips for writing clear emails.",
    "What happens when you boil an egg?",
    "Describe how bread rises.",
)


def _stream(model: LanguageModel, request: Request) -> tuple[float | None, float, Any]:
    """(seconds to the first non-empty piece, seconds to the end, the final completion)."""
    t0 = time.perf_counter()
    first: float | None = None
    final = None
    for chunk in model.stream(request):
        if chunk.text and first is None:
            first = time.perf_counter() - t0
        final = chunk.completion or final
    return first, time.perf_counter() - t0, final


def run(config: str, pipeline: str, max_tokens: int, prompts: int) -> dict[str, Any]:
    runtime = Runtime(load_config(config))
    try:
        guarded = runtime.pipeline(pipeline)
        if not isinstance(guarded, Guarded) or guarded.output is None:
            raise SystemExit(f"pipeline {pipeline!r} has no output guard")
        inner = guarded.inner
        screened = Guarded(inner, output=guarded.output, window=guarded.window, overlap=guarded.overlap, name=pipeline)
        rows = []
        for prompt in PROMPTS[:prompts]:
            request = Request.of(prompt, max_tokens=max_tokens, temperature=0.0)
            plain_first, plain_total, _ = _stream(inner, request)
            first, total, final = _stream(screened, request)
            checks = [e.latency_s for e in final.trace if e.operation == "guard"]
            rows.append({
                "prompt": prompt, "chars": len(final.text), "windows": len(checks), "finish": final.finish_reason,
                "window_ms": [round(c * 1000, 1) for c in checks],
                "first_plain_ms": round((plain_first or plain_total) * 1000, 1),
                "first_guarded_ms": round((first or total) * 1000, 1),
                "total_plain_ms": round(plain_total * 1000, 1), "total_guarded_ms": round(total * 1000, 1),
            })  # fmt: skip
    finally:
        runtime.close()
    per_window = [ms for r in rows for ms in r["window_ms"]]

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in rows), 1)

    return {
        "config": config, "pipeline": pipeline, "guard": type(guarded.output).__name__, "window": guarded.window,
        "overlap": guarded.overlap, "max_tokens": max_tokens, "load_average": os.getloadavg(),
        "median_window_ms": round(statistics.median(per_window), 1) if per_window else None,
        "median_first_plain_ms": median("first_plain_ms"), "median_first_guarded_ms": median("first_guarded_ms"),
        "median_total_plain_ms": median("total_plain_ms"), "median_total_guarded_ms": median("total_guarded_ms"),
        "rows": rows,
    }  # fmt: skip


def render(result: dict[str, Any], command: str) -> str:
    lines = [
        "# Streamed screening: latency per window and time to first released text", "",
        f"`{command}`", "",
        f"Pipeline `{result['pipeline']}` of `{result['config']}`: output guard {result['guard']}, windows of "
        f"{result['window']} characters, overlap {result['overlap']}, max_tokens {result['max_tokens']}; load "
        f"average {', '.join(f'{x:.1f}' for x in result['load_average'])} (wall-clock on a shared machine).", "",
        "| median | inner alone | guarded |", "|---|---|---|",
        "| time to first released text (ms) | "
        f"{result['median_first_plain_ms']} | {result['median_first_guarded_ms']} |",
        f"| whole answer (ms) | {result['median_total_plain_ms']} | {result['median_total_guarded_ms']} |",
        f"| guard latency per window (ms) | | {result['median_window_ms']} |", "",
        "| prompt | chars | windows | finish | per window (ms) |", "|---|---|---|---|---|",
    ]  # fmt: skip
    lines += [
        f"| {r['prompt']} | {r['chars']} | {r['windows']} | {r['finish']} | {', '.join(map(str, r['window_ms']))} |"
        for r in result["rows"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--pipeline", default="guarded-cloud")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--out", default="bench/results/guard_stream.md")
    args = parser.parse_args(argv)
    command = " ".join(["python -m tandemlm.bench.guard_stream", *(argv if argv is not None else sys.argv[1:])])
    result = run(args.config, args.pipeline, args.max_tokens, args.prompts)
    result["command"] = command
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(result, command), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(render(result, command))


if __name__ == "__main__":
    main()
