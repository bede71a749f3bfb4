"""`tandem bench distill`: does distilling the cloud model into the edge model pay, and does selection save data?

On GSM8K's test half: the student (edge model) before tuning, after LoRA tuning on every train item's teacher
answer (`all`), on the selected items only (`selected`: teacher right, student wrong or unsure), and on a
perplexity-curated half of `all` (`curated`), optionally on the selected items with a KL term to the teacher's
top-k next-token logprobs as well (`student_kd`, token-level KD: `train/kd.py`), all at the same number of steps
(equal training tokens up to the examples' lengths), and the teacher; accuracy with bootstrap 95% intervals, and
each tuned student's gain over the base with a paired interval. The tuned students are evaluated through llama.cpp
with the converted GGUF adapter, the way they would be deployed.

The loop closed for cost: a cascade (student answers, escalates on low mean token probability) is fitted on the
train items both outcome tables cover and the students were not tuned from, to reach 95% of the teacher's
accuracy, before (the base student's rows) and after (the tuned student's answers to the same train items), and
its cloud share on test is reported.

Training runs live under a work directory (one per variant: examples, adapter, run.json) and are skipped when
their run.json matches; answers are appended to a rows JSONL as they finish and skipped on a rerun, so a run
stopped at any point resumes. Answers of the base student and the teacher come from the outcome tables where
they have the item.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tandemlm.bench.collab import bootstrap_ci, paired_gain
from tandemlm.bench.datasets import Item, load, sample, split_of
from tandemlm.bench.outcomes import MAX_TOKENS, Outcome, measure, read_table
from tandemlm.config import LlamaCppConfig, Runtime, TandemConfig
from tandemlm.errors import ConfigError, ValidationError
from tandemlm.models.base import LanguageModel
from tandemlm.train.distill import SelectionSettings, Source, chosen, select, summary, train_pool, write_examples

TRAINED = {"student_after": "all", "student_selected": "selected", "student_curated": "curated", "student_kd": "kd"}
VARIANTS = ("student_before", "student_after", "student_selected", "student_curated", "student_kd", "teacher")
OF_TEACHER = 0.95  # the cascade's accuracy target: this share of the teacher's accuracy on the split


@dataclass(frozen=True)
class DistillBench:
    """What one benchmark run covers; `work` holds the training runs, `rows` the answers."""

    work: Path
    rows: Path
    outcomes: Path = Path("bench/outcomes")
    dataset: str = "gsm8k"
    items: int = 20
    train_items: int | None = None  # None: the train items the teacher table covers
    steps: int = 20
    threads: int | None = 1
    source: Source = "teacher"
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    keep: float = 0.5
    order: str = "mid"
    rank: int = 8
    lr: float = 3e-4
    max_length: int = 512
    seed: int = 0
    cascade: str = "student_after"  # the tuned student whose train answers refit the cascade
    cascade_items: int | None = None  # held-out train items both tables cover that refit it (None: all of them)
    variants: tuple[str, ...] = VARIANTS
    kd_weight: float = 0.5  # student_kd: the selected examples with the teacher's top-k, this share of the loss
    kd_top_k: int = 8


def test_items(dataset: str, n: int, seed: int = 0) -> list[Item]:
    """The first `n` test-split items in the seeded order of `datasets.sample` (the outcome tables' order)."""
    return [item for item in sample(load(dataset), None, seed) if split_of(item.id) == "test"][:n]


def _tables(s: DistillBench) -> dict[str, dict[str, Outcome]]:
    return {role: {o.id: o for o in read_table(s.outcomes / s.dataset / f"{role}.jsonl")} for role in ("edge", "cloud")}


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _lora(s: DistillBench) -> Any:
    from tandemlm.train.lora import LoraSettings

    return LoraSettings(rank=s.rank, lr=s.lr, steps=s.steps, max_length=s.max_length, seed=s.seed)


def _pool(s: DistillBench, tables: Mapping[str, Mapping[str, Outcome]]) -> list[Item]:
    """The train items the students are tuned from: the first `train_items`, else the first four fifths of those
    the teacher's table covers (the rest refit the cascade on answers the tuned student was not trained on)."""
    covered = sum(o.split == "train" for o in tables["cloud"].values())
    return train_pool(s.dataset, s.train_items or covered - covered // 5 or None, s.seed)


def _trained(out: Path, data: Path, lora: Any) -> dict[str, Any] | None:
    """The run.json of a finished training run on exactly these examples and settings, else None."""
    from tandemlm.train.lora import RUN, _sha256

    run = out / RUN
    if not run.is_file() or not (out / "adapter.gguf").is_file():
        return None
    report: dict[str, Any] = json.loads(run.read_text(encoding="utf-8"))
    settings = {**lora.identity(), "steps": lora.steps, "checkpoint_every": lora.checkpoint_every}
    if report.get("data_sha256") != _sha256(data) or report.get("settings") != json.loads(json.dumps(settings)):
        return None
    return report


def train_variants(s: DistillBench, base: str, scorer: Callable[[], LanguageModel],
                   log: Callable[[str], object], teacher: Callable[[], LanguageModel] | None = None,
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """Write each variant's examples and tune the student on them (skipped where already done). `scorer` gives
    the model that scores the curation (the base student, llama.cpp), `teacher` the one whose top-k the `kd`
    variant learns from. Returns per variant what training took, and the selection's summary."""
    from tandemlm.train.curate import curate
    from tandemlm.train.kd import teacher_targets
    from tandemlm.train.lora import train_lora

    tables = _tables(s)
    pool = _pool(s, tables)
    refs = None
    if s.source != "teacher":
        from tandemlm.train.distill import reference_solutions

        refs = reference_solutions()
    choices = select(pool, tables["cloud"], tables["edge"], s.selection, source=s.source, references=refs)
    lora = _lora(s)
    if s.threads:
        import torch

        torch.set_num_threads(s.threads)
    out: dict[str, dict[str, Any]] = {}
    curation: dict[str, Any] = {}
    for variant in (v for v in s.variants if v in TRAINED):
        kind = TRAINED[variant]
        where = s.work / kind
        where.mkdir(parents=True, exist_ok=True)
        data = where / "distill.jsonl"
        settings = replace(lora, kd_weight=s.kd_weight) if kind == "kd" else lora
        if kind == "curated":
            source_data = s.work / "all" / "distill.jsonl"
            write_examples(chosen(choices, "all"), source_data)
            curation = curate(source_data, data, scorer(), fraction=s.keep, order=s.order)  # type: ignore[arg-type]
        elif kind == "kd":
            if teacher is None:
                raise ValidationError("the student_kd variant needs the teacher model")
            write_examples(chosen(choices, "selected"), where / "examples.jsonl")
            teacher_targets(teacher, base, where / "examples.jsonl", data, top_k=s.kd_top_k,
                            max_length=s.max_length)  # fmt: skip
        else:
            write_examples(chosen(choices, kind), data)
        report = _trained(where, data, settings)
        if report is None:
            log(f"training {kind} on {data}")
            run = train_lora(base, data, where, settings, resume=True, bar=True, log=log,
                             command=f"tandem bench distill ({kind})")  # fmt: skip
            report = json.loads((where / "run.json").read_text(encoding="utf-8"))
            del run
        out[variant] = {
            "examples": report["examples"], "tokens": report["tokens"], "trained_tokens": report["trained_tokens"],
            "seconds": report["seconds"], "tokens_per_s": report["tokens_per_s"], "loss_first": report["loss_first"],
            "loss_last": report["loss_last"], "adapter": str(where / "adapter.gguf"),
        }  # fmt: skip
    picked = {w: summary(choices, w) for w in ("all", "selected")}
    picked["curated"] = {k: v for k, v in curation.items() if k != "scores"}
    return out, picked


def _adapted(config: TandemConfig, adapter: str, threads: int | None) -> LanguageModel:
    spec = config.models.get("edge")
    if not isinstance(spec, LlamaCppConfig):
        raise ConfigError("the distillation benchmark needs a llama.cpp edge model in the config")
    from tandemlm.models import ENGINES

    updated = spec.model_copy(update={"adapter": adapter, "n_threads": threads or spec.n_threads})
    return ENGINES[updated.engine](**updated.options(f"edge+{Path(adapter).parent.name}"))


def answer_all(config: TandemConfig, s: DistillBench, trained: Mapping[str, Mapping[str, Any]],
               log: Callable[[str], object]) -> list[dict[str, Any]]:  # fmt: skip
    """Every (variant, item) answer not yet in the rows file, item by item across the variants (so a run cut
    short compares them on the same items); table rows stand in for the base student and the teacher."""
    tables = _tables(s)
    rows = read_rows(s.rows)
    done = {(r["variant"], r["id"]) for r in rows}
    tests = test_items(s.dataset, s.items, s.seed)
    tuned_from = {i.id for i in _pool(s, tables)}
    held_out = [i for i in sample(load(s.dataset), None, s.seed) if split_of(i.id) == "train"
                and i.id in tables["edge"] and i.id in tables["cloud"] and i.id not in tuned_from]  # fmt: skip
    if s.cascade in trained and not held_out:
        log("no train item both tables cover is left out of the tuning pool, so the cascade is not refitted "
            "(pass --train-items below the teacher table's train items)")  # fmt: skip
    wanted = [(v, item) for item in tests for v in s.variants]
    wanted += [(s.cascade, item) for item in held_out[: s.cascade_items] if s.cascade in trained]
    models: dict[str, LanguageModel] = {}
    runtime = Runtime(config)
    s.rows.parent.mkdir(parents=True, exist_ok=True)
    try:
        for n, (variant, item) in enumerate(wanted, 1):
            if (variant, item.id) in done:
                continue
            table = {"student_before": tables["edge"], "teacher": tables["cloud"]}.get(variant, {})
            started = time.perf_counter()
            if item.id in table:
                outcome, origin = table[item.id], "table"
            else:
                if variant not in models:
                    if variant in TRAINED:
                        models[variant] = _adapted(config, trained[variant]["adapter"], s.threads)
                    else:
                        models[variant] = runtime.model("edge" if variant == "student_before" else "cloud")
                outcome, origin = measure(models[variant], item, features=variant != "teacher"), "measured"
            row = {"variant": variant, "origin": origin, **asdict(outcome)}
            with s.rows.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows.append(row)
            done.add((variant, item.id))
            log(f"[{n}/{len(wanted)}] {variant} {item.id} ({item.id and split_of(item.id)}): "
                f"correct={outcome.correct} {time.perf_counter() - started:.1f} s")  # fmt: skip
    finally:
        for m in models.values():
            m.close()
        runtime.close()
    return rows


def accuracy(values: Sequence[float]) -> dict[str, Any]:
    right = np.asarray(values, dtype=np.float64)
    low, high = bootstrap_ci(right)
    return {"n": len(right), "accuracy": round(float(right.mean()), 4) if len(right) else None,
            "ci_low": round(low, 4), "ci_high": round(high, 4)}  # fmt: skip


def _signal(row: Mapping[str, Any]) -> float:
    """Higher sends to the cloud: minus the answer's geometric-mean token probability (cascade:logprob)."""
    return -math.exp(row["mean_logprob"]) if row.get("mean_logprob") is not None else 0.0


def fitted_threshold(scores: np.ndarray, edge: np.ndarray, cloud: np.ndarray, target: float) -> float:
    """The threshold of least cloud share whose accuracy reaches `target` (scores above it go to the cloud);
    -inf (everything to the cloud) when none does."""
    best: tuple[float, float] | None = None
    for t in [*np.unique(scores)[::-1], -np.inf]:
        to_cloud = scores > t
        if float(np.where(to_cloud, cloud, edge).mean()) >= target - 1e-12:
            best = (float(to_cloud.mean()), float(t))
            break
    return -np.inf if best is None else best[1]


def cascade_point(train: Sequence[tuple[Mapping[str, Any], Outcome]], test: Sequence[tuple[Mapping[str, Any], Outcome]]
                  ) -> dict[str, Any]:  # fmt: skip
    """Fit the cascade's threshold on train (95% of the teacher's train accuracy), apply it to test."""
    out: dict[str, Any] = {"train_items": len(train), "test_items": len(test)}
    if not train or not test:
        return {**out, "share": None, "accuracy": None}
    arrays = {}
    for name, pairs in (("train", train), ("test", test)):
        arrays[name] = (np.array([_signal(r) for r, _ in pairs]), np.array([float(r["correct"]) for r, _ in pairs]),
                        np.array([float(c.correct) for _, c in pairs]))  # fmt: skip
    s_tr, e_tr, c_tr = arrays["train"]
    threshold = fitted_threshold(s_tr, e_tr, c_tr, OF_TEACHER * float(c_tr.mean()))
    s_te, e_te, c_te = arrays["test"]
    to_cloud = s_te > threshold
    return {**out, "threshold": None if math.isinf(threshold) else -threshold,
            "share": round(float(to_cloud.mean()), 4),
            "accuracy": round(float(np.where(to_cloud, c_te, e_te).mean()), 4),
            "target_test": round(OF_TEACHER * float(c_te.mean()), 4)}  # fmt: skip


def summarise(rows: Sequence[dict[str, Any]], s: DistillBench) -> dict[str, Any]:
    """Accuracies on the test items every variant answered, paired gains over the base student, the cascade."""
    tables = _tables(s)
    by = {v: {r["id"]: r for r in rows if r["variant"] == v} for v in s.variants}
    tests = test_items(s.dataset, s.items, s.seed)
    common = [i.id for i in tests if all(i.id in by[v] for v in s.variants)]
    out: dict[str, Any] = {"test_items": len(common)}
    for v in s.variants:
        out[v] = accuracy([by[v][i]["correct"] for i in common])
        cut = [by[v][i]["tokens_out"] >= MAX_TOKENS[tests[0].kind] for i in common]
        out[v]["cut"] = round(sum(cut) / len(cut), 3) if cut else None  # answers that ran out of budget
    if "student_before" in by:
        base = [float(by["student_before"][i]["correct"]) for i in common]
        for v in (v for v in s.variants if v in TRAINED):
            out[f"gain_{TRAINED[v]}"] = paired_gain([float(by[v][i]["correct"]) for i in common], base)
    cloud = tables["cloud"]
    tuned = {r["id"]: r for r in rows if r["variant"] == s.cascade}
    before = {i: asdict(o) for i, o in tables["edge"].items()}
    tuned_from = {i.id for i in _pool(s, tables)}
    train_ids = [i for i, o in cloud.items() if o.split == "train" and i in tuned and i in before
                 and i not in tuned_from]  # fmt: skip
    test_ids = [i for i in common if i in cloud and i in tuned]

    def pairs(source: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> list[tuple[Mapping[str, Any], Outcome]]:
        return [(source[i], cloud[i]) for i in ids]

    out["cascade_before"] = cascade_point(pairs(before, train_ids), pairs(before, test_ids))
    out["cascade_after"] = cascade_point(pairs(tuned, train_ids), pairs(tuned, test_ids))
    return out


def run_distill_bench(config: TandemConfig, s: DistillBench, *, label: str = "default",
                      log: Callable[[str], object] = lambda _: None) -> dict[str, Any]:  # fmt: skip
    """Train the variants, answer the test items (and the cascade's train items), and summarise."""
    spec = config.models.get("edge")
    if not isinstance(spec, LlamaCppConfig):
        raise ConfigError("the distillation benchmark needs a llama.cpp edge model named 'edge' in the config")
    if s.dataset != "gsm8k":
        raise ValidationError("the distillation benchmark covers gsm8k only")
    started = time.perf_counter()
    loaded: dict[str, LanguageModel] = {}

    def scorer() -> LanguageModel:
        if "edge" not in loaded:
            loaded["edge"] = _adapted_free(config, s.threads)
        return loaded["edge"]

    def teacher() -> LanguageModel:
        if "cloud" not in loaded:
            loaded["cloud"] = _adapted_free(config, s.threads, "cloud")
        return loaded["cloud"]

    try:
        trained, picked = train_variants(s, spec.source, scorer, log, teacher)
    finally:
        for m in loaded.values():
            m.close()
    rows = answer_all(config, s, trained, log)
    result = summarise(rows, s)
    after = trained.get("student_after", {})
    result.update(
        train_examples=after.get("examples"), train_tokens=after.get("tokens"),
        train_seconds=after.get("seconds"), train_tokens_per_s=after.get("tokens_per_s"),
        cascade_share_before=result["cascade_before"]["share"], cascade_share_after=result["cascade_after"]["share"],
        training=trained, selection=picked, wall_seconds=round(time.perf_counter() - started, 1),
        answer_seconds=round(sum(r["latency_s"] for r in rows if r.get("origin") == "measured"), 1),
        settings=_settings(s, label, spec.source),
    )  # fmt: skip
    return result


def _adapted_free(config: TandemConfig, threads: int | None, name: str = "edge") -> LanguageModel:
    """A config model (no adapter) with the benchmark's threads: the edge for curation scores, the cloud for the
    KD variant's teacher top-k."""
    spec = config.models.get(name)
    if not isinstance(spec, LlamaCppConfig):
        raise ConfigError(f"the distillation benchmark needs a llama.cpp model named {name!r} in the config")
    from tandemlm.models import ENGINES

    updated = spec.model_copy(update={"n_threads": threads or spec.n_threads})
    return ENGINES[updated.engine](**updated.options(name))


def _settings(s: DistillBench, label: str, base: str) -> dict[str, Any]:
    out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(replace(s)).items()}
    out.update(config=label, base=base, date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
               machine=f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
               load=" ".join(f"{x:.1f}" for x in os.getloadavg()))  # fmt: skip
    return out


def _acc(r: Mapping[str, Any]) -> str:
    if r.get("accuracy") is None:
        return "—"
    return f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def to_markdown(result: dict[str, Any], command: str) -> str:
    cfg = result["settings"]
    names = {"student_before": "student before", "student_after": "student after (all)",
             "student_selected": "student after (selected)", "student_curated": "student after (curated)",
             "student_kd": "student after (selected, token-level KD)", "teacher": "teacher"}  # fmt: skip
    lines = [
        "# Distillation: cloud model into the edge model (GSM8K test)", "",
        f"Command: `{command}`  ",
        f"Date: {cfg['date']}; machine: {cfg['machine']}; load average at the end {cfg['load']}; "
        f"wall time {result['wall_seconds']} s (training runs and answers reused from earlier runs count 0; over "
        f"every run that made them: training {sum(t['seconds'] for t in result['training'].values()):.0f} s, "
        f"answers {result.get('answer_seconds', '—')} s).  ",
        f"Student `{cfg['base']}` (config `{cfg['config']}`), LoRA rank {cfg['rank']}, lr {cfg['lr']}, "
        f"{cfg['steps']} steps of batch 1 per variant, max length {cfg['max_length']}, seed {cfg['seed']}, "
        f"{cfg['threads']} thread(s); targets from `{cfg['source']}`; selection: student sure at "
        f"{cfg['selection']['student_sure']}, teacher sure at {cfg['selection']['teacher_sure']}; curated: "
        f"{cfg['keep']} of `all` by the base student's perplexity, `{cfg['order']}` range"
        + (f"; token-level KD: the selected examples, KL to the teacher's top-{cfg.get('kd_top_k')} at weight "
           f"{cfg.get('kd_weight')}" if "student_kd" in cfg["variants"] else "")
        + ". Tuned students answer "
        "through llama.cpp with the converted GGUF adapter; the base student and the teacher come from the "
        "outcome tables where they have the item.", "",
        f"{result['test_items']} test items answered by every variant; `[lo, hi]`: bootstrap 95% interval "
        "(2000 resamples of the items; gains: paired, resampling the per-item differences).", "",
        "| model | accuracy | gain over before (items won, lost) | cut at the budget | examples | training tokens "
        "| train s | tokens/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for v in cfg["variants"]:
        t = result["training"].get(v, {})
        g = result.get(f"gain_{TRAINED[v]}") if v in TRAINED else None
        gain = (f"{g['gain']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}] ({g.get('won')}, {g.get('lost')})"
                if g and g["gain"] is not None else "—")  # fmt: skip
        cells = [names[v], _acc(result[v]), gain, result[v].get("cut", "—"), t.get("examples", "—"),
                 t.get("tokens", "—"), t.get("seconds", "—"), t.get("tokens_per_s", "—")]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    sel = result["selection"]
    lines += [
        "",
        f"Selection kept {sel['selected']['kept']} of {sel['selected']['with_target']} train items with a target "
        f"({sel['selected']['share_kept']:.1%}); reasons over the pool: "
        + ", ".join(f"{k} {v}" for k, v in sorted(sel["selected"]["reasons"].items())) + ".",
        "",
        "## Cascade (student first, cloud on low confidence)",
        "",
        f"Threshold on the answer's mean token probability, fitted to reach {OF_TEACHER:.0%} of the teacher's "
        "accuracy on held-out train items (both tables cover them; no student was tuned on them), applied to test.",
        "",
        "| cascade | train items | test share to cloud | test accuracy | test target |",
        "|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for key in ("cascade_before", "cascade_after"):
        c = result[key]
        lines.append(f"| {key.split('_')[1]} | {c['train_items']} | {c.get('share')} | {c.get('accuracy')} | "
                     f"{c.get('target_test', '—')} |")  # fmt: skip
    lines += ["", "## Targets (issue 14)", "", *targets(result)]
    return "\n".join([*lines, ""])


SMOKE = 100  # fewer test items than this: an interval too wide to judge the targets by


def targets(result: Mapping[str, Any]) -> list[str]:
    """The issue's three targets against this run's numbers, and whether the run is big enough to judge them."""
    g_all, g_sel = result.get("gain_all") or {}, result.get("gain_selected") or {}
    share = (result.get("selection") or {}).get("selected", {}).get("share_kept")
    before, after = result.get("cascade_share_before"), result.get("cascade_share_after")

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else "met" if ok else "not met"

    gain_ok = None if g_all.get("gain") is None else g_all["gain"] >= 0.05 and g_all["ci_low"] > 0
    kept_ok = None
    if g_sel.get("gain") is not None and g_all.get("gain") is not None and share is not None:
        kept_ok = g_all["gain"] > 0 and g_sel["gain"] >= 0.8 * g_all["gain"] and share <= 0.5
    fitted = result.get("cascade_after") or {}
    cascade_ok = None
    if before is not None and after is not None and fitted.get("accuracy") is not None:
        # a share bought with accuracy below the target is no saving
        cascade_ok = after < before and fitted["accuracy"] >= fitted["target_test"]
    out = [
        f"- tuned student gains >= 5 points, 95% interval above 0: {verdict(gain_ok)} "
        f"(gain {g_all.get('gain')}, interval [{g_all.get('ci_low')}, {g_all.get('ci_high')}])",
        f"- selected keeps >= 80% of the gain with <= 50% of the data: {verdict(kept_ok)} "
        f"(selected gain {g_sel.get('gain')}, share of data {share})",
        f"- the cascade's cloud share falls at the accuracy target: {verdict(cascade_ok)} (before {before}, after "
        f"{after}; test accuracy after {fitted.get('accuracy')}, target {fitted.get('target_test')})",
    ]
    if result.get("test_items", 0) < SMOKE:
        out += ["", f"**Smoke-sized run** ({result.get('test_items')} test items): it shows that "
                "the commands work end to end; the targets cannot be judged at this size (a 95% interval on so few "
                "items spans tens of points)."]  # fmt: skip
    return out
