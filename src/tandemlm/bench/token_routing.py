"""Token-level routing sweep: quality against the cloud's share of tokens, on GSM8K and HumanEval slices.

The edge (Qwen2.5-Coder-0.5B) decodes; below confidence τ the cloud (1.5B) gives the token. τ = 0 is
the edge alone and τ = 1 the cloud alone, so both end points come from the same code and items.
"""

from __future__ import annotations

import platform
import sys
import time
from importlib.metadata import version
from typing import Any

from tqdm import tqdm

from tandemlm.bench.datasets import chat_prompt
from tandemlm.bench.scoring import correct
from tandemlm.bench.speculative import bench_items
from tandemlm.collab.token_routing import TokenRouter
from tandemlm.models.llamacpp import LlamaCppModel
from tandemlm.models.sources import resolve
from tandemlm.types import Request


def run_token_routing_bench(n_items: int, thresholds: list[float], max_tokens: int) -> dict[str, Any]:
    edge = LlamaCppModel(resolve("catalog:qwen2.5-coder-0.5b", progress=False), name="qwen2.5-coder-0.5b", n_ctx=2048)
    cloud = LlamaCppModel(resolve("catalog:qwen2.5-coder-1.5b", progress=False), name="qwen2.5-coder-1.5b", n_ctx=2048)
    items = bench_items(n_items)
    rows = []
    for tau in thresholds:
        router = TokenRouter(edge, cloud, threshold=tau)
        per_kind: dict[str, list[bool]] = {"code": [], "math": []}
        edge_tokens = cloud_tokens = 0
        started = time.perf_counter()
        for item in tqdm(items, desc=f"tau={tau}", file=sys.stderr):
            c = router.generate(Request.of(chat_prompt(item), max_tokens=max_tokens))
            per_kind[item.kind].append(correct(item, c.text))
            edge_tokens += router.last_stats.edge_tokens
            cloud_tokens += router.last_stats.cloud_tokens
        seconds = time.perf_counter() - started
        rows.append({
            "threshold": tau,
            "humaneval_pass": round(sum(per_kind["code"]) / max(len(per_kind["code"]), 1), 3),
            "gsm8k_accuracy": round(sum(per_kind["math"]) / max(len(per_kind["math"]), 1), 3),
            "cloud_token_share": round(cloud_tokens / max(edge_tokens + cloud_tokens, 1), 3),
            "tokens": edge_tokens + cloud_tokens,
            "tok_s": round((edge_tokens + cloud_tokens) / seconds, 2),
        })  # fmt: skip
    for m in (edge, cloud):
        m.close()
    settings = {"items": n_items, "max_tokens": max_tokens, "machine": platform.machine(),
                "llama_cpp_python": version("llama-cpp-python")}  # fmt: skip
    return {"rows": rows, "settings": settings}


def to_markdown(result: dict[str, Any], command: str) -> str:
    cfg = result["settings"]
    n_code, n_math = (cfg["items"] + 1) // 2, cfg["items"] // 2
    lines = [
        "# Token-level routing: qwen2.5-coder-0.5b decodes, qwen2.5-coder-1.5b takes the uncertain tokens",
        "",
        f"Command: `{command}`",
        "",
        f"{n_code} HumanEval items (pass@1, tests executed) and {n_math} GSM8K items (final number), the first "
        f"of each file; greedy, max_tokens {cfg['max_tokens']}; signal: the edge's top-token probability; "
        f"{cfg['machine']}, llama-cpp-python {cfg['llama_cpp_python']}. Threshold 0 = edge alone, 1 = cloud alone.",
        "",
        "| threshold | HumanEval pass@1 | GSM8K accuracy | cloud token share | tokens | tok/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['threshold']} | {r['humaneval_pass']} | {r['gsm8k_accuracy']} | {r['cloud_token_share']} "
        f"| {r['tokens']} | {r['tok_s']} |"
        for r in result["rows"]
    ]
    return "\n".join(lines) + "\n"
