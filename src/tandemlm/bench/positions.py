"""What a batched verification pass costs against one decode step: llama.cpp on the 1.5B target, over 1, 5 and 9
tokens evaluated after a cached 199-token prefix (a pass over 1 is a decode step; over k + 1, a verification of k
drafts), with 1 and 2 threads, interleaved, medians of 4. Speculative decoding pays only where a round's tokens
outnumber its pass's cost in decode steps.

`python -m tandemlm.bench.positions [OUT.json]` (default bench/results/speculative_positions.json).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tandemlm.models.llamacpp import LlamaCppModel
from tandemlm.models.sources import resolve

POSITIONS = (1, 5, 9)
THREADS = (1, 2)


def measure(repeats: int = 4) -> dict[str, Any]:
    path = resolve("catalog:qwen2.5-coder-1.5b", progress=False)
    out: dict[str, Any] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
    models = {t: LlamaCppModel(path, n_ctx=1024, n_threads=t) for t in THREADS}
    base = models[1].tokenize("def fibonacci(n):\n    " * 20)[:200]
    extra = models[1].tokenize(" return a + b if n > 1 else n  # the rest of the function body goes here") * 2
    times: dict[tuple[int, int], list[float]] = {(t, n): [] for t in THREADS for n in POSITIONS}
    try:
        for _ in range(repeats):
            for t, m in models.items():
                for n in POSITIONS:
                    m.logprobs_after(base[:-1], [len(base) - 2], top_k=1)  # 199 tokens cached
                    seq = base + extra[: n - 1]
                    t0 = time.perf_counter()
                    m.logprobs_after(seq, list(range(len(base) - 1, len(seq))), top_k=1)  # evaluates n tokens
                    times[(t, n)].append(time.perf_counter() - t0)
    finally:
        for m in models.values():
            m.close()
    med = {key: statistics.median(v) for key, v in times.items()}
    out["median_ms"] = {f"threads={t} positions={n}": round(1000 * s, 1) for (t, n), s in med.items()}
    out["decode_steps_per_pass"] = {
        f"threads={t} positions={n}": round(med[(t, n)] / med[(t, 1)], 2) for t in THREADS for n in POSITIONS
    }
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/speculative_positions.json")
    result = measure()
    result["command"] = " ".join(["python -m tandemlm.bench.positions", *sys.argv[1:]])
    target.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
