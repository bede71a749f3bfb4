"""Speculative decoding benchmark: Qwen2.5-Coder-1.5B verifies; the 0.5B, prompt lookup or both draft.

Two suites: `edit` (code-editing requests whose answers mostly copy their input, bench/edits.py) and `fresh`
(HumanEval and GSM8K prompts, written from scratch). Each prompt is answered greedily by the target alone, by
SpeculativeDecoder with each drafter and, optionally, by llama-cpp-python's own `draft_model` hook, in one run,
rotating the order per prompt and clearing every KV cache before each answer so all start cold.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from importlib.metadata import version
from typing import Any

import numpy as np
from tqdm import tqdm

from tandemlm.bench.datasets import Item, chat_prompt, load
from tandemlm.bench.edits import HELD_OUT_FROM, edit_prompts
from tandemlm.collab.speculative import SpeculationStats, SpeculativeDecoder
from tandemlm.models.llamacpp import LlamaCppModel
from tandemlm.models.sources import resolve
from tandemlm.types import Request


def bench_prompts(n: int) -> list[tuple[str, str]]:
    """The first n/2 HumanEval and n/2 GSM8K items, interleaved (fixed, not selected for speed)."""
    return [(item.kind, chat_prompt(item)) for item in bench_items(n)]


def bench_items(n: int) -> list[Item]:
    """The first n/2 HumanEval and n/2 GSM8K items, interleaved."""
    code, math = load("humaneval")[: (n + 1) // 2], load("gsm8k")[: n // 2]
    mixed = [item for pair in zip(code, math, strict=False) for item in pair]
    return (mixed + code[len(math) :])[:n]


class _DraftHook:
    """llama-cpp-python's LlamaDraftModel protocol, backed by greedy decoding of a draft model: the peer."""

    def __init__(self, draft: LlamaCppModel, k: int) -> None:
        self.draft, self.k = draft, k

    def __call__(self, input_ids: Any, /, **kwargs: Any) -> Any:
        tokens = [int(t) for t in input_ids]
        out: list[int] = []
        for _ in range(self.k):
            out.append(self.draft.next_token_logprobs(tokens + out).argmax())
        return np.array(out, dtype=np.intc)


NEAR_TIE = 0.5  # ε: a divergence is at a near-tie when the target's own top-2 logit gap there is below this
SUITES = ("edit", "fresh")
PRIMARY = "hybrid"  # the drafter the suites' headline numbers describe


def suite_prompts(suite: str, n: int) -> list[tuple[str, str, str]]:
    """(suite, kind, prompt) for n prompts of a suite: edits (kind = the edit) or fresh code and math."""
    if suite == "edit":
        return [("edit", e.task, e.prompt) for e in edit_prompts(n)]
    if suite == "fresh":
        return [("fresh", kind, prompt) for kind, prompt in bench_prompts(n)]
    raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")


def run_speculative_bench(
    n_prompts: int, max_tokens: int, k: int, adaptive: bool, peers: bool, *, suite: str = "all",
    drafters: tuple[str, ...] = ("model", "lookup", "hybrid"), lookup_k: int = 8, threads: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every prompt answered greedily by the target alone and by each drafter (and the peer hook), interleaved in
    one run, order rotated per prompt, every KV cache cleared before each answer."""
    threads = threads or os.cpu_count() or 1
    load_before = os.getloadavg()
    draft = LlamaCppModel(
        resolve("catalog:qwen2.5-coder-0.5b", progress=False), name="qwen2.5-coder-0.5b", n_ctx=2048, n_threads=threads
    )
    target = LlamaCppModel(
        resolve("catalog:qwen2.5-coder-1.5b", progress=False), name="qwen2.5-coder-1.5b", n_ctx=2048, n_threads=threads
    )
    specs = {d: SpeculativeDecoder(draft, target, k=k, adaptive=adaptive, drafter=d, lookup_k=lookup_k)  # type: ignore[arg-type]
             for d in drafters}  # fmt: skip
    hooked = None
    if peers:
        from llama_cpp import Llama

        hooked = Llama(
            model_path=target.llm.model_path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False,
            draft_model=_DraftHook(draft, k),  # type: ignore[arg-type]
        )  # fmt: skip
    chosen = SUITES if suite == "all" else (suite,)
    prompts = [p for s in chosen for p in suite_prompts(s, n_prompts)]
    rows = []
    for i, (suite_name, kind, prompt) in enumerate(tqdm(prompts, desc="prompts", file=sys.stderr)):
        request = Request.of(prompt, max_tokens=max_tokens)
        runs = ["target", *drafters, *(["hook"] if hooked else [])]
        results: dict[str, tuple[str, int, float]] = {}
        stats: dict[str, SpeculationStats] = {}
        decode: dict[str, float] = {}
        for name in runs[i % len(runs) :] + runs[: i % len(runs)]:
            draft.clear_cache()
            target.clear_cache()
            busy = draft.decode_s + target.decode_s
            t0 = time.perf_counter()
            if name == "hook":
                assert hooked is not None
                hooked.reset()
                out: Any = hooked.create_chat_completion(
                    [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0.0
                )
                text, tokens = out["choices"][0]["message"]["content"] or "", out["usage"]["completion_tokens"]
            else:
                c = (target if name == "target" else specs[name]).generate(request)
                text, tokens = c.text, c.usage.completion_tokens
            results[name] = (text, tokens, time.perf_counter() - t0)
            if name in specs:
                stats[name] = specs[name].last_stats
                decode[name] = draft.decode_s + target.decode_s - busy
        base_text, base_tokens, base_s = results["target"]
        row: dict[str, Any] = {
            "suite": suite_name, "kind": kind, "tokens": base_tokens, "target_tok_s": round(base_tokens / base_s, 2),
        }  # fmt: skip
        for name in drafters:
            row[name] = _drafter_row(results[name], stats[name], decode[name], base_s)
            row[name].update(_divergence(target, request, base_text, results[name][0]))
        if "hook" in results:
            row["hook"] = {
                "speedup": round(base_s / results["hook"][2], 3), "identical": results["hook"][0] == base_text,
            }  # fmt: skip
        rows.append(row)
    for m in (draft, target):
        m.close()
    settings = {
        "prompts_per_suite": n_prompts, "suites": list(chosen), "max_tokens": max_tokens, "k": k,
        "adaptive": adaptive, "threads": threads, "drafters": list(drafters), "lookup_k": lookup_k,
        "near_tie_epsilon": NEAR_TIE, "edits_from": f"HumanEval/{HELD_OUT_FROM}",
        "machine": platform.machine(), "llama_cpp_python": version("llama-cpp-python"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    return {"rows": rows, "suites": summarise_suites(rows, drafters), "settings": settings}


def _drafter_row(
    result: tuple[str, int, float], stats: SpeculationStats, decode_s: float, base_s: float
) -> dict[str, Any]:
    """One drafter's run against the target alone: the speedup, the cost model's prediction beside it, and where
    the time went (the model's decode calls, the draft, lookup and verify parts, the rest)."""
    _, tokens, seconds = result
    parts = stats.parts_s
    return {
        "tok_s": round(tokens / seconds, 2),
        "speedup": round(base_s / seconds, 3),
        "predicted_speedup": round(base_s / parts, 3) if parts else 0.0,
        "share_of_prediction": round(parts / seconds, 3),
        "alpha": round(stats.acceptance, 3),
        "tokens_per_round": round(stats.generated / stats.rounds, 2) if stats.rounds else 0.0,
        "lookup_share": round(stats.lookup_rounds / stats.rounds, 3) if stats.rounds else 0.0,
        "draft_ms_tok": round(stats.draft_ms_per_token, 1),
        "verify_ms_pos": round(stats.verify_ms_per_position, 1),
        "profile_s": {
            "first_round": round(stats.first_round_s, 3), "draft": round(stats.draft_s, 3),
            "lookup": round(stats.lookup_s, 3), "verify": round(stats.verify_s, 3),
            "accept": round(stats.accept_s, 3), "emit": round(stats.emit_s, 3),
            "rest": round(max(0.0, seconds - parts - stats.accept_s - stats.emit_s), 3),
            "llama_decode": round(decode_s, 3), "total": round(seconds, 3),
        },
    }  # fmt: skip


def _divergence(target: LlamaCppModel, request: Request, alone: str, text: str) -> dict[str, Any]:
    """Whether the text is the target's own; if not, the target's top-2 logit gap where the two first part."""
    if text == alone:
        return {"identical": True}
    a, b = target.tokenize(alone), target.tokenize(text)
    i = next((j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    target.clear_cache()
    top = target.next_token_logprobs(target.prompt_tokens(request) + a[:i], top_k=2).top(2)
    gap = top[0][1] - top[1][1]
    return {"identical": False, "diverged_at": i, "gap": round(gap, 4), "near_tie": gap < NEAR_TIE}


REMOTE_CONFIG = """
models:
  target: {engine: llamacpp, source: catalog:qwen2.5-coder-1.5b, location: edge, n_ctx: 2048}
pipelines:
  target: {model: target}
"""


def run_remote(n_prompts: int, max_tokens: int, k: int) -> dict[str, Any]:
    """The draft on this side, the target behind `tandem serve` on another port: round trips and bytes sent."""
    import tempfile
    from pathlib import Path

    from tandemlm.bench.gateway import free_port, server
    from tandemlm.models.openai import OpenAIModel
    from tandemlm.trace import Recorder

    draft = LlamaCppModel(resolve("catalog:qwen2.5-coder-0.5b", progress=False), name="qwen2.5-coder-0.5b", n_ctx=2048)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config, port = Path(tmp) / "remote.yaml", free_port()
        config.write_text(REMOTE_CONFIG)
        argv = [sys.executable, "-m", "tandemlm.cli", "serve", "-c", str(config), "--port", str(port), "--log-level",
                "warning"]  # fmt: skip
        with server(argv, f"http://127.0.0.1:{port}/readyz", Path(tmp) / "serve.log"):
            remote = OpenAIModel("target", base_url=f"http://127.0.0.1:{port}/v1", name="remote-target", timeout=600)
            spec = SpeculativeDecoder(draft, remote, k=k)
            for kind, prompt in tqdm(bench_prompts(n_prompts), desc="remote", file=sys.stderr):
                draft.clear_cache()
                with Recorder() as rec:
                    t0 = time.perf_counter()
                    c = spec.generate(Request.of(prompt, max_tokens=max_tokens))
                    seconds = time.perf_counter() - t0
                sent = [e.egress for e in rec.events if e.model == remote.name and e.egress is not None]
                tokens = max(c.usage.completion_tokens, 1)
                rows.append({
                    "kind": kind, "tokens": c.usage.completion_tokens,
                    "tok_s": round(c.usage.completion_tokens / seconds, 2),
                    "round_trips": len(sent), "round_trips_per_token": round(len(sent) / tokens, 3),
                    "bytes_sent_per_token": round(sum(len(b.encode()) for b in sent) / tokens, 1),
                    "alpha": round(spec.last_stats.acceptance, 3),
                })  # fmt: skip
            remote.close()
    draft.close()
    med = lambda key: round(statistics.median(r[key] for r in rows), 3)  # noqa: E731
    return {"rows": rows, "median_round_trips_per_token": med("round_trips_per_token"),
            "median_bytes_sent_per_token": med("bytes_sent_per_token"), "median_tok_s": med("tok_s")}  # fmt: skip


def summarise(rows: list[dict[str, Any]], drafter: str) -> dict[str, Any]:
    """Medians of one drafter's rows, and the divergence accounting."""
    mine = [r[drafter] for r in rows]
    med = lambda key: round(statistics.median(r[key] for r in mine), 3)  # noqa: E731
    diverged = [r for r in mine if not r["identical"]]
    parts = ("first_round", "draft", "lookup", "verify", "accept", "emit", "rest", "llama_decode", "total")
    return {
        "prompts": len(mine),
        "median_speedup": med("speedup"),
        "median_predicted_speedup": med("predicted_speedup"),
        "median_share_of_prediction": med("share_of_prediction"),
        "median_alpha": med("alpha"),
        "median_tokens_per_round": med("tokens_per_round"),
        "median_lookup_share": med("lookup_share"),
        "median_draft_ms_tok": med("draft_ms_tok"),
        "median_verify_ms_pos": med("verify_ms_pos"),
        "median_target_ms_tok": round(1000 / statistics.median(r["target_tok_s"] for r in rows), 1),
        "identical_share": round(1 - len(diverged) / len(mine), 3),
        "divergences": len(diverged),
        "near_tie_share": round(sum(r["near_tie"] for r in diverged) / len(diverged), 3) if diverged else 1.0,
        "largest_gap": max((r["gap"] for r in diverged), default=0.0),
        "profile_share": {  # each part's share of the total time, summed over the prompts
            p: round(sum(r["profile_s"][p] for r in mine) / sum(r["profile_s"]["total"] for r in mine), 3)
            for p in parts[:-1]
        },
    }


def summarise_suites(rows: list[dict[str, Any]], drafters: tuple[str, ...]) -> dict[str, Any]:
    """Per suite (and, in fresh, per kind): every drafter's summary; the headline fields are the primary one's."""
    primary = PRIMARY if PRIMARY in drafters else drafters[0]

    def block(subset: list[dict[str, Any]]) -> dict[str, Any]:
        per = {d: summarise(subset, d) for d in drafters}
        head = per[primary]
        return {"drafter": primary, "median_speedup": head["median_speedup"],
                "median_predicted_speedup": head["median_predicted_speedup"],
                "median_share_of_prediction": head["median_share_of_prediction"],
                "near_tie_share": head["near_tie_share"], "largest_gap": head["largest_gap"],
                "drafters": per}  # fmt: skip

    out: dict[str, Any] = {}
    for suite in SUITES:
        subset = [r for r in rows if r["suite"] == suite]
        if not subset:
            continue
        out[suite] = block(subset)
        if suite == "fresh":
            for kind in ("code", "math"):
                if part := [r for r in subset if r["kind"] == kind]:
                    out[suite][kind] = block(part)
    return out


TARGETS = {("edit", None): 1.5, ("fresh", "code"): 1.2, ("fresh", "math"): 1.0}


def to_markdown(result: dict[str, Any], command: str) -> str:
    cfg, suites = result["settings"], result["suites"]
    lines = [
        "# Speculative decoding: qwen2.5-coder-1.5b verifies; the 0.5b, prompt lookup or both draft",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {cfg['machine']}, {cfg['threads']} threads, llama-cpp-python {cfg['llama_cpp_python']}; greedy, "
        f"max_tokens {cfg['max_tokens']}, model k {cfg['k']} ({'adaptive' if cfg['adaptive'] else 'fixed'}), lookup "
        f"k {cfg['lookup_k']} (n-grams 2-4); {cfg['prompts_per_suite']} prompts per suite; every answer starts from "
        "empty KV caches; the target alone and every drafter run interleaved per prompt, order rotated. Load "
        f"average (1, 5, 15 min) {cfg['load_average_before']} before, {cfg['load_average_after']} after: the "
        "machine is shared, so absolute times are noisy; the speedups are ratios within one prompt's runs. Edits "
        f"come from {cfg['edits_from']} on (held out: development looked only at earlier items).",
        "",
        f"Predicted speedup: the target alone's time over the cost model's parts (the first round, then each "
        f"round's measured draft and verify time); share of prediction = parts / measured time (target >= 0.9). "
        f"Divergence: the first token where a drafter's greedy text leaves the target alone's, at a near-tie when "
        f"the target's own top-2 logit gap there is below eps = {cfg['near_tie_epsilon']}.",
        "",
        "| suite | drafter | prompts | median speedup | target | predicted | share of prediction | alpha "
        "| tokens/round | lookup rounds | identical | divergences at near-ties | largest gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    blocks: list[tuple[str, str | None, dict[str, Any]]] = []
    for suite, block in suites.items():
        blocks.append((suite, None, block))
        blocks += [(suite, kind, block[kind]) for kind in ("code", "math") if kind in block]
    for suite, kind, block in blocks:
        goal = TARGETS.get((suite, kind))
        for d, s in block["drafters"].items():
            shown = f"**{s['median_speedup']}x**" if d == block["drafter"] else f"{s['median_speedup']}x"
            lines.append(
                f"| {suite}{'/' + kind if kind else ''} | {d} | {s['prompts']} | {shown} | "
                f"{'>= ' + str(goal) + 'x' if goal and d == block['drafter'] else ''} | "
                f"{s['median_predicted_speedup']}x | {s['median_share_of_prediction']} | {s['median_alpha']} | "
                f"{s['median_tokens_per_round']} | "
                f"{s['median_lookup_share']:.0%} | {s['identical_share']:.0%} | "
                f"{s['near_tie_share']:.0%} of {s['divergences']} | {s['largest_gap']} |"
            )
    lines += ["", "Where the time goes (share of all speculative time, per suite and drafter; llama_decode is the "
              "engines' decode calls inside the draft, verify and first-round parts):", ""]  # fmt: skip
    parts = list(next(iter(suites.values()))["drafters"][cfg["drafters"][0]]["profile_share"])
    lines += ["| suite | drafter | " + " | ".join(parts) + " |", "|---" * (len(parts) + 2) + "|"]
    for suite, block in suites.items():
        for d, s in block["drafters"].items():
            lines.append(f"| {suite} | {d} | " + " | ".join(f"{s['profile_share'][p]:.1%}" for p in parts) + " |")
    if "remote" in result:
        r = result["remote"]
        lines += ["", f"Remote variant (target behind `tandem serve`, verified through /v1/tandem/logprobs): "
                  f"{r['median_round_trips_per_token']} round trips and {r['median_bytes_sent_per_token']} bytes "
                  f"sent per generated token (medians over {len(r['rows'])} prompts), "
                  f"{r['median_tok_s']} tok/s"]  # fmt: skip
    keys = ["speedup", "predicted_speedup", "share_of_prediction", "alpha", "tokens_per_round", "lookup_share"]
    lines += ["", "| suite | kind | tokens | target tok/s | drafter | " + " | ".join(keys) + " | identical | gap |",
              "|---" * (len(keys) + 7) + "|"]  # fmt: skip
    for r in result["rows"]:
        for d in cfg["drafters"]:
            x = r[d]
            lines.append(
                f"| {r['suite']} | {r['kind']} | {r['tokens']} | {r['target_tok_s']} | {d} | "
                + " | ".join(str(x[k]) for k in keys)
                + f" | {x['identical']} | {x.get('gap', '')} |"
            )
    return "\n".join(lines) + "\n"
