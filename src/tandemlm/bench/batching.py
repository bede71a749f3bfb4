"""Continuous batching on llama.cpp (`generate_many`): tokens per second by sequences per step, and which batch
sizes keep greedy answers exactly those of one request alone.

Throughput: B sampled requests (seeds 1..B) decoded together, completion tokens over wall time, the median of
`runs`. Exactness: four greedy prompts answered alone, then together with 3 slots (the engine's `exact_slots`) and
with 4, counting the answers whose text differs from the one alone.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from dataclasses import replace
from importlib.metadata import version
from typing import Any

from tqdm import tqdm

from tandemlm.bench.engines import DECODE_PROMPT
from tandemlm.models.llamacpp import LlamaCppModel
from tandemlm.models.sources import resolve
from tandemlm.types import Request

SIZES = (1, 2, 3, 4, 8)
GREEDY_PROMPTS = (
    "Write a Python function that checks whether a string is a palindrome.",
    "Natalia sold 48 clips in April and half as many in May. How many clips did she sell in all? Think step by step.",
    "Explain what a hash table is in three sentences.",
    "Write a SQL query that counts the orders per customer.",
)


def bench_model(name: str, threads: int, runs: int, max_tokens: int) -> dict[str, Any]:
    model = LlamaCppModel(resolve(f"catalog:{name}", progress=False), name=name, n_ctx=2048, n_threads=threads)
    base = Request.of(DECODE_PROMPT, max_tokens=max_tokens, temperature=0.7)
    model.generate(replace(base, params=replace(base.params, max_tokens=8)))  # warm-up: page the weights in
    rates: dict[int, list[float]] = {b: [] for b in SIZES}
    for _ in tqdm(range(runs), desc=name, file=sys.stderr):
        for b in SIZES:
            requests = [replace(base, params=replace(base.params, seed=s)) for s in range(1, b + 1)]
            began = time.perf_counter()
            answers = model.generate_many(requests) if b > 1 else [model.generate(requests[0])]
            rates[b].append(sum(a.usage.completion_tokens for a in answers) / (time.perf_counter() - began))
    greedy = [Request.of(p, max_tokens=max_tokens) for p in GREEDY_PROMPTS]
    alone = []
    for r in greedy:
        model.clear_cache()
        alone.append(model.generate(r).text)
    differ = {}
    for slots in (3, 4):
        model.exact_slots = slots
        differ[slots] = sum(a.text != t for a, t in zip(model.generate_many(greedy), alone, strict=True))
    model.close()
    med = {b: statistics.median(v) for b, v in rates.items()}
    return {
        "model": name,
        "tok_s": {str(b): round(v, 2) for b, v in med.items()},
        "speedup": {str(b): round(v / med[1], 2) for b, v in med.items()},
        "greedy_differ_3_slots": differ[3],
        "greedy_differ_4_slots": differ[4],
        "greedy_prompts": len(greedy),
    }


def run_batching_bench(names: list[str], threads: int, runs: int, max_tokens: int) -> dict[str, Any]:
    rows = [bench_model(n, threads, runs, max_tokens) for n in names]
    return {"threads": threads, "runs": runs, "max_tokens": max_tokens, "models": rows}


def to_markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        "# Continuous batching on llama.cpp: tokens/s by sequences per step",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {result['threads']} thread(s), "
        f"llama-cpp-python {version('llama-cpp-python')}. Sampled answers of up to {result['max_tokens']} tokens, "
        f"medians of {result['runs']} runs; speedup against one request alone.",
        "",
        "| model | " + " | ".join(f"B={b} tok/s (×)" for b in SIZES) + " | greedy answers unlike alone, 3 / 4 slots |",
        "|---|" + "---|" * len(SIZES) + "---|",
    ]
    for r in result["models"]:
        cells = " | ".join(f"{r['tok_s'][str(b)]} ({r['speedup'][str(b)]}×)" for b in SIZES)
        lines.append(
            f"| {r['model']} | {cells} | {r['greedy_differ_3_slots']} / {r['greedy_differ_4_slots']} "
            f"of {r['greedy_prompts']} |"
        )
    lines += [
        "",
        "Greedy requests run at most 3 per step (`exact_slots`): llama.cpp's CPU kernels multiply up to three "
        "sequences' activations as they do one, and four or more in blocks (a GEMM that rounds otherwise), where a "
        "near-tie can flip a token. Sampled requests use up to 8 slots.",
    ]
    return "\n".join(lines) + "\n"
