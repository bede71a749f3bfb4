"""`tandem bench ...`: the benchmark commands; each writes its results (markdown and JSON, with the command
that produced them) under bench/results/. Heavy imports stay inside the commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tandemlm.cli_support import config_option, errors_to_exit_codes, with_threads, write_report
from tandemlm.config import Runtime, load_config
from tandemlm.guard.verify_cli import bench_verify


@click.group()
def bench() -> None:
    """Benchmarks that write their results under bench/results/."""


@bench.command("engines")
@click.option("--models", "names", default="smollm2-135m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b", show_default=True)
@click.option("--runs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--out", default="bench/results/engines.md", show_default=True)
def bench_engines(names: str, runs: int, max_tokens: int, out: str) -> None:
    """Decode and prefill tok/s through tandemlm vs llama-cpp-python called directly, in one run."""
    from tandemlm.bench.engines import run_engine_bench

    with errors_to_exit_codes():
        report = run_engine_bench([n.strip() for n in names.split(",") if n.strip()], runs, max_tokens)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(report, encoding="utf-8")
        click.echo(report)


@bench.command("batching")
@click.option("--models", "names", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b", show_default=True)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--runs", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "json_out", default="bench/results/batching.json", show_default=True)
@click.option("--out", default="bench/results/batching.md", show_default=True)
def bench_batching(names: str, threads: int, runs: int, max_tokens: int, json_out: str, out: str) -> None:
    """Continuous batching (`generate_many`): tok/s by sequences per step, and greedy answers kept exact."""
    from tandemlm.bench.batching import run_batching_bench, to_markdown

    with errors_to_exit_codes():
        models = [n.strip() for n in names.split(",") if n.strip()]
        write_report(run_batching_bench(models, threads, runs, max_tokens), json_out, out, to_markdown)


@bench.command("gateway")
@click.option("--requests", default=2000, show_default=True, type=click.IntRange(min=1), help="Per target and round.")
@click.option("--concurrency", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--warmup", default=100, show_default=True, type=click.IntRange(min=0))
@click.option("--out", default="bench/results/gateway.md", show_default=True, help="Report; raw numbers go to .json.")
@click.option("--no-litellm", is_flag=True, help="Skip LiteLLM (else installed on first use under ~/.cache/tandemlm).")
@click.option("--no-profile", is_flag=True, help="Skip the in-process profile of a request's layers.")
def bench_gateway(
    requests: int, concurrency: int, rounds: int, warmup: int, out: str, no_litellm: bool, no_profile: bool
) -> None:
    """Requests/s and p50/p99 latency to an instant backend: direct, through `tandem serve`, through LiteLLM."""
    from tandemlm.bench.gateway import run_gateway_bench, to_markdown

    with errors_to_exit_codes():
        result = run_gateway_bench(
            requests, concurrency, rounds, warmup, litellm=not no_litellm, out=out, profile=not no_profile
        )
        report = to_markdown(result)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(report, encoding="utf-8")
        Path(out).with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        click.echo(report)


@bench.command("soak")
@click.option("--config", "-c", default="tiny", show_default=True, help="Pipeline file, or a packaged config name.")
@click.option("--requests", default=2000, show_default=True, type=click.IntRange(min=1))
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "json_out", default="bench/results/soak.json", show_default=True)
@click.option("--out", default="bench/results/soak.md", show_default=True)
@click.option("--no-fail", is_flag=True, help="Only report: exit 0 even when a target is missed.")
def bench_soak(config: str, requests: int, concurrency: int, seed: int, json_out: str, out: str, no_fail: bool) -> None:
    """Soak `tandem serve` with real clients (drops, deadlines), then SIGTERM it: outcomes, hangs, shutdown time.

    Exit code 1 when a target is missed: a hang, an unexpected 5xx, a lost request, ledger != cloud calls, a
    shutdown of 10 s or more."""
    from tandemlm.bench.soak import failed, run_soak, to_markdown

    with errors_to_exit_codes():
        result = run_soak(config, requests, concurrency, seed)
        write_report(result, json_out, out, to_markdown)
    if failed(result) and not no_fail:
        sys.exit(1)


@bench.command("speculative")
@click.option("--prompts", "n_prompts", default=20, show_default=True, type=click.IntRange(min=2), help="Per suite.")
@click.option("--suite", type=click.Choice(["edit", "fresh", "all"]), default="all", show_default=True)
@click.option(
    "--drafters", default="model,lookup,hybrid", show_default=True, help="Comma-separated: model,lookup,hybrid."
)
@click.option(
    "--lookup-k", default=8, show_default=True, type=click.IntRange(1, 32), help="Most tokens per lookup draft."
)
@click.option("--threads", default=None, type=click.IntRange(min=1), help="llama.cpp threads (default: every core).")
@click.option("--max-tokens", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("-k", "k", default=4, show_default=True, type=click.IntRange(1, 16), help="Draft tokens per round.")
@click.option("--fixed-k", is_flag=True, help="Keep k fixed instead of adapting it to the acceptance rate.")
@click.option("--no-peers", is_flag=True, help="Skip llama-cpp-python's draft_model hook.")
@click.option(
    "--remote",
    "remote_prompts",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Also verify this many prompts on a target served by `tandem serve` (round trips, bytes).",
)
@click.option("--json", "json_out", default="bench/results/speculative.json", show_default=True)
@click.option("--out", default="bench/results/speculative.md", show_default=True)
def bench_speculative(
    n_prompts: int, suite: str, drafters: str, lookup_k: int, threads: int | None, max_tokens: int, k: int,
    fixed_k: bool, no_peers: bool, remote_prompts: int, json_out: str, out: str,
) -> None:  # fmt: skip
    """Speculative decoding (1.5B verifies; the 0.5B, prompt lookup or both draft) on edit and fresh prompts,
    against the 1.5B alone and llama-cpp-python's hook."""
    from tandemlm.bench.speculative import run_remote, run_speculative_bench, to_markdown
    from tandemlm.collab.drafting import DRAFTERS

    chosen = tuple(d.strip() for d in drafters.split(",") if d.strip())
    if not chosen or any(d not in DRAFTERS for d in chosen):
        raise click.BadParameter(f"drafters must be some of {', '.join(DRAFTERS)}, got {drafters!r}")
    with errors_to_exit_codes():
        result = run_speculative_bench(
            n_prompts, max_tokens, k, adaptive=not fixed_k, peers=not no_peers, suite=suite,
            drafters=chosen, lookup_k=lookup_k, threads=threads,
        )  # fmt: skip
        if remote_prompts:
            result["remote"] = run_remote(remote_prompts, max_tokens, k)
        write_report(result, json_out, out, to_markdown)


@bench.command("token-routing")
@click.option("--items", "n_items", default=20, show_default=True, type=click.IntRange(min=2))
@click.option("--thresholds", default="0,0.3,0.5,0.7,0.9,1", show_default=True)
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "json_out", default="bench/results/token_routing.json", show_default=True)
@click.option("--out", default="bench/results/token_routing.md", show_default=True)
def bench_token_routing(n_items: int, thresholds: str, max_tokens: int, json_out: str, out: str) -> None:
    """Quality vs the cloud's share of tokens across routing thresholds, on GSM8K and HumanEval slices."""
    from tandemlm.bench.token_routing import run_token_routing_bench, to_markdown

    with errors_to_exit_codes():
        try:
            taus = [float(t) for t in thresholds.split(",")]
        except ValueError:
            raise click.BadParameter(f"thresholds must be comma-separated numbers, got {thresholds!r}") from None
        result = run_token_routing_bench(n_items, taus, max_tokens)
        write_report(result, json_out, out, to_markdown)


@bench.command("structured")
@click.option("--config", "-c", default="tiny", show_default=True, help="Pipeline file, or a packaged config name.")
@click.option("--items", "n_items", default=20, show_default=True, type=click.IntRange(min=1), help="Per task.")
@click.option("--max-tokens", default=96, show_default=True, type=click.IntRange(min=1))
@click.option("--pipelines", default="edge,cloud,cascade,speculative", show_default=True)
@click.option("--json", "json_out", default="bench/results/structured.json", show_default=True)
@click.option("--out", default="bench/results/structured.md", show_default=True)
def bench_structured(config: str, n_items: int, max_tokens: int, pipelines: str, json_out: str, out: str) -> None:
    """JSON extraction per pipeline with and without the grammar: valid share, field accuracy, tokens/s."""
    from tandemlm.bench.structured import run_structured_bench, to_markdown

    with errors_to_exit_codes():
        names = [p.strip() for p in pipelines.split(",") if p.strip()]
        write_report(run_structured_bench(config, n_items, max_tokens, names), json_out, out, to_markdown)


@bench.command("outcomes")
@click.option("--dataset", "dataset_name", required=True, type=click.Choice(["gsm8k", "mmlu", "humaneval"]))
@click.option("--model", "model_name", required=True, help="A model of the config (edge, cloud, ...).")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Items to cover (a seeded sample).")
@click.option("--samples", default=0, show_default=True, type=click.IntRange(min=0),
              help="Extra sampled answers for the self-consistency feature.")  # fmt: skip
@click.option("--features/--no-features", default=True, show_default=True,
              help="Read the confidence features (cascades need them from the model that answers first).")  # fmt: skip
@click.option("--dir", "out_dir", default="bench/outcomes", show_default=True)
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="CPU threads for a llama.cpp model (to build two tables side by side).")  # fmt: skip
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="Items answered together: a llama.cpp model decodes their answers (and their samples) in one "
                   "batch, several times the items per second of one at a time on a CPU.")  # fmt: skip
@click.option("--unsafe-sandbox", is_flag=True,
              help="Run model-written code without the bubblewrap sandbox, as this user (only where bwrap cannot "
                   "run, on a machine with nothing to protect).")  # fmt: skip
@config_option
def bench_outcomes(
    dataset_name: str,
    model_name: str,
    limit: int | None,
    samples: int,
    features: bool,
    out_dir: str,
    threads: int | None,
    batch: int,
    unsafe_sandbox: bool,
    config: str,
) -> None:
    """Build (or resume) an outcome table: the model's answer, correctness, cost and confidence per item."""
    from contextlib import nullcontext

    from tandemlm import sandbox
    from tandemlm.bench.datasets import load, sample
    from tandemlm.bench.outcomes import build_table
    from tandemlm.errors import SandboxUnavailableError

    with errors_to_exit_codes():
        if dataset_name == "humaneval" and not unsafe_sandbox:  # before any model time is spent
            try:
                sandbox.require()
            except SandboxUnavailableError as err:
                raise SandboxUnavailableError(f"{err}; or, with nothing to protect here: --unsafe-sandbox") from err
        runtime = Runtime(with_threads(load_config(config), model_name, threads))
        model = runtime.model(model_name)
        path = Path(out_dir) / dataset_name / f"{model_name}.jsonl"
        confinement = sandbox.unconfined() if unsafe_sandbox else nullcontext()
        with confinement:
            items = sample(load(dataset_name), limit)
            rows = list(build_table(model, items, path, samples=samples, features=features, batch=batch))
        how = "UNCONFINED (--unsafe-sandbox)" if unsafe_sandbox else "in the bwrap sandbox"
        code = f"; the code ran {how}" if dataset_name == "humaneval" else ""
        click.echo(f"{path}: {len(rows)} new rows, {sum(r.correct for r in rows)} correct{code}")
        runtime.close()


@bench.command("route")
@click.option("--dataset", "datasets", multiple=True, type=click.Choice(["gsm8k", "mmlu", "humaneval"]),
              help="Repeat for several (default: all three).")  # fmt: skip
@click.option("--outcomes", default="bench/outcomes", show_default=True, help="Directory of outcome tables.")
@click.option("--plots", default="bench/results", show_default=True, help="Directory for the PNG plots.")
@click.option("--json", "json_out", default="bench/results/route.json", show_default=True)
@click.option("--out", default="bench/results/route.md", show_default=True)
@click.option("--save-routers", default=None, help="Directory to save the fitted routers in (for `route` pipelines).")
@click.option("--embed-tokens", default=256, show_default=True, type=click.IntRange(3, 256),
              help="With --embedder minilm: cut prompts to this many tokens (fewer: faster decisions).")  # fmt: skip
@click.option(
    "--embedder",
    default="static",
    show_default=True,
    type=click.Choice(["static", "minilm"]),
    help="What the embedding routers read: MiniLM's distilled token table, or the MiniLM transformer.",
)
@click.option("--latency/--no-latency", default=True, show_default=True,
              help="Time one routing decision per embedder config (the report's latency table).")  # fmt: skip
def bench_route(
    datasets: tuple[str, ...], outcomes: str, plots: str, json_out: str, out: str, save_routers: str | None,
    embed_tokens: int, embedder: str, latency: bool,
) -> None:  # fmt: skip
    """Cascades and query routers on the test split of stored outcome tables: APGR, CPT, AIQ with bootstrap 95%
    intervals, plots."""
    from tandemlm.bench.route import run_route_bench, to_markdown

    with errors_to_exit_codes():
        names = list(datasets or ("gsm8k", "mmlu", "humaneval"))
        saved = Path(save_routers) if save_routers else None
        result = run_route_bench(
            names, Path(outcomes), Path(plots), saved, embed_tokens=embed_tokens, embedder=embedder, latency=latency
        )
        write_report(result, json_out, out, to_markdown)


@bench.command("collab")
@click.option("--dataset", "datasets", multiple=True, type=click.Choice(["gsm8k", "mmlu", "humaneval"]),
              help="Repeat for several (default: mmlu).")  # fmt: skip
@click.option("--methods", default="super-icl,llm-guided,cross-verify,rank,vote", show_default=True,
              help="Comma-separated: super-icl, guided-cot, hinted, llm-guided, vote, vote-greedy, cross-verify, rank, "
                   "plan-execute, cloud-sc3 (the cloud's self-consistency@3 baseline).")  # fmt: skip
@click.option("--limit", default=None, type=click.IntRange(min=1), help="First N test items (default: all covered).")
@click.option("--outcomes", default="bench/outcomes", show_default=True, help="Outcome tables; rows go to collab/.")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="CPU threads of each llama.cpp model.")
@click.option("--plots", default="bench/results", show_default=True, help="Directory for the PNG plots.")
@click.option("--report-only", is_flag=True, help="Answer nothing new: report the rows already stored.")
@click.option("--tts-save", default=None, help="Directory to save the fitted TTS allocations in (for tts pipelines).")
@click.option(
    "--replay/--no-replay",
    default=True,
    show_default=True,
    help="A member asked exactly what an outcome table asked (math, code) answers from the table.",
)
@click.option("--json", "json_out", default="bench/results/collab.json", show_default=True)
@click.option("--out", default="bench/results/collab.md", show_default=True)
@config_option
def bench_collab(
    datasets: tuple[str, ...], methods: str, limit: int | None, outcomes: str, threads: int | None, plots: str,
    report_only: bool, tts_save: str | None, replay: bool, json_out: str, out: str, config: str,
) -> None:  # fmt: skip
    """Performance collaborations (guidance, ensembles, plan/execute) against the edge and cloud models alone:
    accuracy with bootstrap 95% intervals, $ cost, tokens, p50 latency; resumable. Also the TTS allocator fitted
    on the outcome tables' train split against uniform allocation on the test split."""
    import os

    from tandemlm.bench.collab import plot, run_dataset, targets, to_markdown

    with errors_to_exit_codes():
        cfg = load_config(config)
        for name in ("edge", "cloud"):
            cfg = with_threads(cfg, name, threads)
        runtime = Runtime(cfg)
        names = [m.strip() for m in methods.split(",") if m.strip()]
        previous = json.loads(Path(json_out).read_text(encoding="utf-8")) if Path(json_out).is_file() else {}
        result: dict[str, Any] = {"datasets": previous.get("datasets", {})}  # other datasets' results are kept
        try:
            for dataset in datasets or ("mmlu",):
                r = run_dataset(dataset, names, lambda: (runtime.model("edge"), runtime.model("cloud")),
                                outcomes=Path(outcomes), limit=limit, run=not report_only,
                                tts_save=Path(tts_save) if tts_save else None, replay=replay)  # fmt: skip
                result["datasets"][dataset] = r
                plot(dataset, r, Path(plots) / f"collab_{dataset}.png")
        finally:
            runtime.close()
        result["targets"] = targets(result)
        result["load_average"] = list(os.getloadavg())
        result["models"] = {n: getattr(cfg.models[n], "source", cfg.models[n].engine) for n in ("edge", "cloud")}
        write_report(result, json_out, out, to_markdown)


@bench.command("privacy")
@config_option
@click.option("--edge", default="edge", show_default=True, help="Config model that answers locally and rewrites.")
@click.option("--cloud", default="cloud", show_default=True, help="Config model behind the gatekeeper.")
@click.option("--items", "n_items", default=50, show_default=True, type=click.IntRange(min=1),
              help="GSM8K items per policy (leakage vs utility).")  # fmt: skip
@click.option("--sentences", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Synthetic PII sentences (detection).")  # fmt: skip
@click.option("--policies", default="none,pseudonymize,route_local,disclosure,guardian,block", show_default=True)
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=None, type=click.IntRange(min=1), help="CPU threads for llama.cpp models.")
@click.option("--parts", default="detection,masking,leakage,latency", show_default=True,
              help="Which parts to run (also: world, multinational PII on the default detectors).")  # fmt: skip
@click.option("--world-samples", default=600, show_default=True, type=click.IntRange(min=1),
              help="world: samples per locale (dev and held-out; fresh adds half as many).")  # fmt: skip
@click.option("--pii-free", default=300, show_default=True, type=click.IntRange(min=3),
              help="world: PII-free GSM8K/MMLU/HumanEval prompts (false positives).")  # fmt: skip
@click.option("--with-slm", is_flag=True, help="world: add the slm detector (the --edge model).")
@click.option("--json", "json_out", default="bench/results/privacy.json", show_default=True)
@click.option("--out", default="bench/results/privacy.md", show_default=True)
def bench_privacy(
    config: str, edge: str, cloud: str, n_items: int, sentences: int, policies: str, max_tokens: int, seed: int,
    threads: int | None, parts: str, world_samples: int, pii_free: int, with_slm: bool, json_out: str, out: str,
) -> None:  # fmt: skip
    """PII detection P/R/F1 vs Presidio alone, leakage vs utility per policy on GSM8K, gatekeeper latency; `world`:
    the default detectors on multinational PII, development and held-out templates apart."""
    from tandemlm.bench.privacy import PARTS, POLICIES, run_privacy_bench, to_markdown

    chosen = [p.strip() for p in policies.split(",") if p.strip()]
    if unknown := sorted(set(chosen) - set(POLICIES)):
        raise click.BadParameter(f"unknown policies {unknown}; choose from {', '.join(POLICIES)}")
    wanted = [p.strip() for p in parts.split(",") if p.strip()]
    if not wanted or (unknown := sorted(set(wanted) - set(PARTS))):
        raise click.BadParameter(f"parts must be some of {', '.join(PARTS)}, got {parts!r}")
    with errors_to_exit_codes():
        loaded = with_threads(with_threads(load_config(config), edge, threads), cloud, threads)
        result = run_privacy_bench(loaded, config, edge, cloud, n_items, sentences, max_tokens, chosen, seed, wanted,
                                   world_samples=world_samples, pii_free=pii_free, with_slm=with_slm,
                                   progress=lambda s: click.echo(s, err=True))  # fmt: skip
        write_report(result, json_out, out, to_markdown)


@bench.command("privacy-utility")
@config_option
@click.option("--edge", default="edge", show_default=True, help="Config model that rewrites and composes.")
@click.option("--cloud", default="cloud", show_default=True, help="Config model behind the gatekeeper.")
@click.option("--items", "n_items", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "test"]),
              help="GSM8K half: develop on train, report on test.")  # fmt: skip
@click.option("--policies", default="none,pseudonymize,disclosure,guardian", show_default=True)
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=None, type=click.IntRange(min=1), help="CPU threads for llama.cpp models.")
@click.option("--rows", default="bench/results/privacy_utility.jsonl", show_default=True,
              help="Per-item rows; a rerun resumes from them.")  # fmt: skip
@click.option("--json", "json_out", default="bench/results/privacy_utility.json", show_default=True)
@click.option("--out", default="bench/results/privacy_utility.md", show_default=True)
def bench_privacy_utility(
    config: str, edge: str, cloud: str, n_items: int, split: str, policies: str, max_tokens: int, seed: int,
    threads: int | None, rows: str, json_out: str, out: str,
) -> None:  # fmt: skip
    """Utility of raw, pseudonymize, disclosure and guardian on GSM8K with PII woven in: accuracy vs raw, the
    share that fell back, leaked values in the exact egress (resumable)."""
    from tandemlm.bench.privacy_utility import UTILITY_POLICIES, run_utility, settings, summarise, to_markdown

    chosen = [p.strip() for p in policies.split(",") if p.strip()]
    if not chosen or set(chosen) - set(UTILITY_POLICIES):
        raise click.BadParameter(f"policies must be some of {', '.join(UTILITY_POLICIES)}, got {policies!r}")
    with errors_to_exit_codes():
        loaded = with_threads(with_threads(load_config(config), edge, threads), cloud, threads)
        got = run_utility(loaded, edge, cloud, n_items, split, max_tokens, chosen, Path(rows), seed,
                          progress=lambda s: click.echo(s, err=True))  # fmt: skip
        result = {"settings": settings(config, edge, cloud, n_items, split, max_tokens, seed),
                  "summary": summarise([r for r in got if r["split"] == split], chosen)}  # fmt: skip
        write_report(result, json_out, out, to_markdown)


@bench.command("guard")
@click.option("--guards", default="classifier,injection", show_default=True)
@click.option("--splits", default="source,random", show_default=True, help="source: train and test sources apart.")
@click.option("--latency-prompts", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--plots", default="bench/results", show_default=True, help="Directory for guard_curves.png.")
@click.option("--json", "json_out", default="bench/results/guard.json", show_default=True)
@click.option("--judge-config", default="default", show_default=True, help="Config whose `judge` guard is scored.")
@click.option("--judge-items", default=30, show_default=True, type=click.IntRange(min=0),
              help="Slice for the judge and the cascade (the edge model runs once per item; 0: skips).")  # fmt: skip
@click.option("--out", default="bench/results/guard.md", show_default=True)
def bench_guard(
    guards: str, splits: str, latency_prompts: int, plots: str, json_out: str, judge_config: str, judge_items: int,
    out: str,
) -> None:  # fmt: skip
    """The trained guards split by source and at random: precision, recall, F1, FPR, AUPRC, recall at 1% FPR,
    over-refusal on sensitive-but-benign prompts, p50/p95 latency per prompt; ROC and PR curves."""
    from tandemlm.bench.guard import GUARDS, SPLITS, run_guard_bench, to_markdown

    chosen = [g.strip() for g in guards.split(",") if g.strip()]
    if not chosen or set(chosen) - set(GUARDS):
        raise click.BadParameter(f"guards must be some of {', '.join(GUARDS)}, got {guards!r}")
    how = [s.strip() for s in splits.split(",") if s.strip()]
    if not how or set(how) - set(SPLITS):
        raise click.BadParameter(f"splits must be some of {', '.join(SPLITS)}, got {splits!r}")
    with errors_to_exit_codes():
        result = run_guard_bench(chosen, how, Path(plots), latency_prompts=latency_prompts, progress=True,
                                 judge_config=judge_config, judge_items=judge_items)  # fmt: skip
        write_report(result, json_out, out, to_markdown)


bench.add_command(bench_verify)


@bench.command("distill")
@click.option("--items", "n_items", default=20, show_default=True, type=click.IntRange(min=1),
              help="GSM8K test items (the first N of the seeded sample; the outcome tables' come first).")  # fmt: skip
@click.option("--train-items", default=None, type=click.IntRange(min=1),
              help="Train items to distill from (default: four fifths of those the teacher's outcome table covers; "
                   "the rest refit the cascade).")  # fmt: skip
@click.option("--steps", default=20, show_default=True, type=click.IntRange(min=1), help="LoRA steps per variant.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1), help="torch and llama.cpp.")
@click.option("--source", default="teacher", show_default=True,
              type=click.Choice(["teacher", "reference", "teacher+reference"]))  # fmt: skip
@click.option("--student-sure", default=0.9, show_default=True, type=click.FloatRange(0, 1))
@click.option("--teacher-sure", default=0.0, show_default=True, type=click.FloatRange(0, 1))
@click.option("--keep", default=0.5, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="The curated variant's share of the `all` examples.")  # fmt: skip
@click.option("--order", default="mid", show_default=True, type=click.Choice(["low", "mid", "high"]))
@click.option("--lr", default=3e-4, show_default=True, type=float)
@click.option("--rank", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--max-length", default=512, show_default=True, type=click.IntRange(min=16))
@click.option("--cascade-items", default=None, type=click.IntRange(min=1),
              help="Held-out train items the tuned student answers to refit the cascade (default: all).")  # fmt: skip
@click.option("--variants", default="student_before,student_after,student_selected,student_curated,teacher",
              show_default=True, help="Which models to compare (a rerun with more resumes).")  # fmt: skip
@click.option("--kd-weight", default=0.5, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="student_kd: the share of the loss that is KL to the teacher's top-k.")  # fmt: skip
@click.option("--kd-top-k", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--outcomes", default="bench/outcomes", show_default=True)
@click.option("--work", default=None, help="Training runs (default: $TANDEM_HOME/distill).")
@click.option("--rows", default="bench/results/distill.jsonl", show_default=True,
              help="Per-item answers; a rerun resumes from them.")  # fmt: skip
@click.option("--json", "json_out", default="bench/results/distill.json", show_default=True)
@click.option("--out", default="bench/results/distill.md", show_default=True)
@config_option
def bench_distill(n_items: int, train_items: int | None, steps: int, threads: int, source: str, student_sure: float,
                  teacher_sure: float, keep: float, order: str, lr: float, rank: int, max_length: int,
                  cascade_items: int | None, variants: str, kd_weight: float, kd_top_k: int, outcomes: str,
                  work: str | None, rows: str, json_out: str, out: str, config: str) -> None:  # fmt: skip
    """Selective distillation on GSM8K: the student before, after tuning on all / selected / curated teacher
    answers (same steps; add student_kd to --variants for token-level KD on the selected ones), and the
    teacher, with bootstrap 95% intervals; training tokens and time; the cascade's cloud share refitted after
    tuning (resumable)."""
    from tandemlm.bench.distill import VARIANTS, DistillBench, run_distill_bench, to_markdown
    from tandemlm.models.sources import tandem_home
    from tandemlm.train.distill import SelectionSettings

    names = tuple(v.strip() for v in variants.split(",") if v.strip())
    if not names or set(names) - set(VARIANTS) or "student_before" not in names:
        raise click.BadParameter(f"variants must include student_before, of {', '.join(VARIANTS)}; got {variants!r}")
    with errors_to_exit_codes():
        cfg = with_threads(with_threads(load_config(config), "edge", threads), "cloud", threads)
        settings = DistillBench(
            work=Path(work) if work else tandem_home() / "distill", rows=Path(rows), outcomes=Path(outcomes),
            items=n_items, train_items=train_items, steps=steps, threads=threads, source=source,  # type: ignore[arg-type]
            selection=SelectionSettings(student_sure, teacher_sure), keep=keep, order=order, rank=rank, lr=lr,
            max_length=max_length, cascade_items=cascade_items, variants=tuple(v for v in VARIANTS if v in names),
            kd_weight=kd_weight, kd_top_k=kd_top_k,
        )  # fmt: skip
        result = run_distill_bench(cfg, settings, label=config, log=lambda s: click.echo(s, err=True))
        write_report(result, json_out, out, to_markdown)


@bench.command("fusion")
@click.option("--items", "n_items", default=20, show_default=True, type=click.IntRange(min=1),
              help="GSM8K test items (the first N of the seeded sample).")  # fmt: skip
@click.option("--train-items", default=60, show_default=True, type=click.IntRange(min=1),
              help="GSM8K train items the small and large models are tuned on (proxy).")  # fmt: skip
@click.option("--steps", default=20, show_default=True, type=click.IntRange(min=1), help="LoRA steps per adapter.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1), help="torch and llama.cpp.")
@click.option("--parts", default="proxy,contrastive,safety,cost", show_default=True)
@click.option("--source", default="reference", show_default=True,
              type=click.Choice(["teacher", "reference", "teacher+reference"]),
              help="GSM8K tuning targets.")  # fmt: skip
@click.option("--max-tokens", default=320, show_default=True, type=click.IntRange(min=1),
              help="GSM8K answer budget (at 320 the outcome tables stand in for the base models).")  # fmt: skip
@click.option("--alpha", default=1.0, show_default=True, type=float, help="Proxy-tuning's alpha.")
@click.option("--beta", default=0.5, show_default=True, type=float)
@click.option("--alpha-mask", default=0.1, show_default=True, type=float)
@click.option("--safety-alpha", default=1.0, show_default=True, type=float)
@click.option("--first-m", default=4, show_default=True, type=click.IntRange(min=0),
              help="Guided answer tokens (0: every token).")  # fmt: skip
@click.option(
    "--safety-items",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Held-out harmful prompts (each plain and jailbreak-wrapped), and sensitive-but-benign ones.",
)
@click.option("--safety-train", default=40, show_default=True, type=click.IntRange(min=1),
              help="Harmful and benign prompts each in the safety-tuning data.")  # fmt: skip
@click.option("--safety-tokens", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--cost-items", default=None, type=click.IntRange(min=1),
              help="Time the large model alone on the first N items only (default: all); the outcome table "
              "stands in on the rest.")  # fmt: skip
@click.option("--report-only", is_flag=True,
              help="Answer nothing: rebuild the report from the rows, each part on the items it has every answer "
              "for.")  # fmt: skip
@click.option("--lr", default=3e-4, show_default=True, type=float)
@click.option("--rank", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--max-length", default=512, show_default=True, type=click.IntRange(min=16))
@click.option("--outcomes", default="bench/outcomes", show_default=True)
@click.option("--work", default=None, help="Training runs (default: $TANDEM_HOME/fusion).")
@click.option("--rows", default="bench/results/fusion.jsonl", show_default=True,
              help="Per-item answers; a rerun resumes from them.")  # fmt: skip
@click.option("--json", "json_out", default="bench/results/fusion.json", show_default=True)
@click.option("--out", default="bench/results/fusion.md", show_default=True)
@config_option
def bench_fusion(n_items: int, train_items: int, steps: int, threads: int, parts: str, source: str,
                 max_tokens: int, alpha: float, beta: float, alpha_mask: float, safety_alpha: float, first_m: int,
                 safety_items: int, safety_train: int, safety_tokens: int, cost_items: int | None, report_only: bool,
                 lr: float, rank: int, max_length: int, outcomes: str, work: str | None, rows: str, json_out: str,
                 out: str, config: str) -> None:  # fmt: skip
    """Logit fusion on the edge/cloud pair: proxy-tuning (gap closed toward the LoRA-tuned large model),
    contrastive decoding, safety-guided decoding (attack success, over-refusal, GSM8K) and each decoder's
    tokens/s, with bootstrap 95% intervals (resumable)."""
    from tandemlm.bench.fusion import PARTS, FusionBench, run_fusion_bench, to_markdown
    from tandemlm.models.sources import tandem_home

    chosen = tuple(p.strip() for p in parts.split(",") if p.strip())
    if not chosen or set(chosen) - set(PARTS):
        raise click.BadParameter(f"parts must be some of {', '.join(PARTS)}, got {parts!r}")
    with errors_to_exit_codes():
        settings = FusionBench(
            work=Path(work) if work else tandem_home() / "fusion", rows=Path(rows), outcomes=Path(outcomes),
            items=n_items, train_items=train_items, steps=steps, threads=threads, source=source,  # type: ignore[arg-type]
            max_tokens=max_tokens, alpha=alpha, beta=beta, alpha_mask=alpha_mask, safety_alpha=safety_alpha,
            first_m=first_m or None, safety_items=safety_items, safety_train=safety_train,
            safety_tokens=safety_tokens, lr=lr, rank=rank, max_length=max_length,
            parts=tuple(p for p in PARTS if p in chosen), cost_items=cost_items, answer=not report_only,
        )  # fmt: skip
        result = run_fusion_bench(load_config(config), settings, label=config, log=lambda s: click.echo(s, err=True))
        write_report(result, json_out, out, to_markdown)
