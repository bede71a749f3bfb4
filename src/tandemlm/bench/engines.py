"""Engine overhead benchmark: tandemlm's llama.cpp engine against llama-cpp-python called directly.

For each model, two identically configured llama.cpp instances (one behind `LlamaCppModel`, one
bare `Llama`) answer the same requests, alternating run by run so machine noise hits both alike.
Prefill: a ~300-token prompt with max_tokens=1 from an empty KV cache. Decode: streamed greedy
generation, tokens after the first divided by the time from the first to the last token.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from tqdm import tqdm

from tandemlm.models.llamacpp import LlamaCppModel
from tandemlm.models.sources import resolve
from tandemlm.types import Request

LONG_PROMPT = (
    " ".join(f"Line {i}: the quick brown fox jumps over the lazy dog while counting to {i * 7}." for i in range(18))
    + "\nSummarise the text above in one sentence."
)
DECODE_PROMPT = "Write a Python function that parses an ISO 8601 date string without using any library, with comments."


@dataclass(frozen=True)
class Sample:
    tokens: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def _timed_stream(pieces: Iterator[Any], count: Callable[[Any], int]) -> Sample:
    """Tokens after the first and the time from the first to the last streamed piece."""
    first = last = 0.0
    tokens = 0
    for piece in pieces:
        n = count(piece)
        if n == 0:
            continue
        now = time.perf_counter()
        if tokens == 0:
            first = now
        tokens += n
        last = now
    return Sample(max(tokens - 1, 0), last - first)


def _tandem_prefill(model: LlamaCppModel) -> Sample:
    model.clear_cache()
    t0 = time.perf_counter()
    c = model.generate(Request.of(LONG_PROMPT, max_tokens=1))
    return Sample(c.usage.prompt_tokens, time.perf_counter() - t0)


def _direct_prefill(llm: Any) -> Sample:
    llm.reset()
    t0 = time.perf_counter()
    out = llm.create_chat_completion([{"role": "user", "content": LONG_PROMPT}], max_tokens=1, temperature=0.0)
    return Sample(out["usage"]["prompt_tokens"], time.perf_counter() - t0)


def _tandem_decode(model: LlamaCppModel, max_tokens: int) -> Sample:
    # one chunk per token except where text is held back at a stop-sequence prefix (none here)
    stream = model.stream(Request.of(DECODE_PROMPT, max_tokens=max_tokens))
    return _timed_stream(stream, lambda c: 1 if c.text else 0)


def _direct_decode(llm: Any, max_tokens: int) -> Sample:
    stream = llm.create_chat_completion(
        [{"role": "user", "content": DECODE_PROMPT}], max_tokens=max_tokens, temperature=0.0, stream=True
    )
    return _timed_stream(stream, lambda c: 1 if c["choices"][0]["delta"].get("content") else 0)


def bench_model(name: str, runs: int, max_tokens: int, threads: int) -> dict[str, Any]:
    from llama_cpp import Llama

    path = resolve(f"catalog:{name}", progress=False)
    model = LlamaCppModel(path, name=name, n_ctx=2048, n_threads=threads)
    direct = Llama(
        model_path=str(path), n_ctx=2048, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    samples: dict[str, list[Sample]] = {
        k: [] for k in ("tandem_prefill", "direct_prefill", "tandem_decode", "direct_decode")
    }
    _tandem_decode(model, 8), _direct_decode(direct, 8)  # warm-up: page the weights in
    for i in tqdm(range(runs), desc=name, file=sys.stderr):
        for who in ("tandem", "direct") if i % 2 == 0 else ("direct", "tandem"):
            if who == "tandem":
                samples["tandem_prefill"].append(_tandem_prefill(model))
                samples["tandem_decode"].append(_tandem_decode(model, max_tokens))
            else:
                samples["direct_prefill"].append(_direct_prefill(direct))
                samples["direct_decode"].append(_direct_decode(direct, max_tokens))
    model.close()
    direct.close()
    med = {k: statistics.median(s.rate for s in v) for k, v in samples.items()}
    return {
        "model": name,
        **{f"{k}_tok_s": round(v, 2) for k, v in med.items()},
        "prefill_ratio": round(med["tandem_prefill"] / med["direct_prefill"], 3),
        "decode_ratio": round(med["tandem_decode"] / med["direct_decode"], 3),
        "decode_tokens": statistics.median(s.tokens for s in samples["tandem_decode"]),
        "prompt_tokens": samples["tandem_prefill"][0].tokens,
    }


def run_engine_bench(names: list[str], runs: int, max_tokens: int) -> str:
    """Run the benchmark and return a markdown report that names the command that made it."""
    threads = os.cpu_count() or 1
    rows = [bench_model(n, runs, max_tokens, threads) for n in names]
    lines = [
        "# Engine overhead: tandemlm vs llama-cpp-python direct",
        "",
        f"Command: `tandem bench engines --models {','.join(names)} --runs {runs} --max-tokens {max_tokens}`",
        "",
        f"Machine: {platform.machine()}, {threads} threads, Python {platform.python_version()}, "
        f"llama-cpp-python {version('llama-cpp-python')}. Medians of {runs} alternating runs.",
        "",
        "| model | prompt tok | prefill tandem tok/s | prefill direct tok/s | ratio "
        "| decode tok | decode tandem tok/s | decode direct tok/s | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['prompt_tokens']} | {r['tandem_prefill_tok_s']} | {r['direct_prefill_tok_s']} "
            f"| {r['prefill_ratio']} | {r['decode_tokens']} | {r['tandem_decode_tok_s']} "
            f"| {r['direct_decode_tok_s']} | {r['decode_ratio']} |"
        )
    lines += ["", "Target: both ratios >= 0.95."]
    return "\n".join(lines) + "\n"
