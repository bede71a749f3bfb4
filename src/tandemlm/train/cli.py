"""`tandem train`: the group every trainer hangs off (guard heads, LoRA adapters, distillation, curation)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tandemlm.cli_support import config_option
from tandemlm.train.lora import DEFAULT_TARGETS


@click.group()
def train() -> None:
    """Train the learned parts (guard heads) from data read out of PyPI wheels."""


@train.command("guard")
@click.option("--out", "out_dir", default=None, help="Directory for the heads (default: the packaged data/guards/).")
@click.option("--heads", default="classifier,injection", show_default=True, help="Which heads to train.")
@click.option("--hidden", default=0, show_default=True, type=click.IntRange(min=0),
              help="Width of one hidden ReLU layer (0: logistic regression).")  # fmt: skip
@click.option("--epochs", default=400, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
def train_guard(out_dir: str | None, heads: str, hidden: int, epochs: int, seed: int) -> None:
    """Train the classifier (harmful requests) and injection heads on the training sources of the split by
    source; write NAME.npz and a JSON card (data, pins, split, validation metrics, this command)."""
    from tandemlm.cli_support import errors_to_exit_codes
    from tandemlm.collab.routing.embeddings import MiniLM
    from tandemlm.guard.classifier import EMBED_TOKENS
    from tandemlm.train.guard import HEADS, TrainSettings, train_guards

    chosen = [h.strip() for h in heads.split(",") if h.strip()]
    if not chosen or set(chosen) - set(HEADS):
        raise click.BadParameter(f"heads must be some of {', '.join(HEADS)}, got {heads!r}")
    with errors_to_exit_codes():
        from importlib import resources

        target = Path(out_dir) if out_dir else Path(str(resources.files("tandemlm.data").joinpath("guards")))
        target.mkdir(parents=True, exist_ok=True)
        command = " ".join(["tandem", *sys.argv[1:]])
        settings = TrainSettings(hidden=hidden, epochs=epochs, seed=seed)
        train_guards(target, MiniLM(max_tokens=EMBED_TOKENS), settings, command=command, which=chosen,
                     progress=lambda s: click.echo(s, err=True), bars=True)  # fmt: skip
        click.echo(f"wrote {', '.join(f'{h}.npz' for h in chosen)} to {target}")


@train.command("lora")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--base", default="catalog:smollm2-135m", show_default=True,
              help="The model to tune: catalog:NAME, a GGUF file or an HF directory.")  # fmt: skip
@click.option("--out", "out_dir", required=True, help="Directory for the adapter, checkpoints and run.json.")
@click.option("--steps", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--rank", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--alpha", default=16.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--dropout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--targets", default=",".join(DEFAULT_TARGETS), show_default=True, help="Linear layers to adapt.")
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--max-length", default=1024, show_default=True, type=click.IntRange(min=16))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--checkpoint-every", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="torch threads (1 is fastest on a loaded machine: spinning OpenMP threads contend).")  # fmt: skip
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--gguf/--no-gguf", default=True, show_default=True, help="Also write adapter.gguf for llama.cpp.")
@click.option("--kd-weight", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of the loss that is KL to the teacher's top-k (teacher_top: tandem train kd).")  # fmt: skip
def train_lora_command(data: str, base: str, out_dir: str, steps: int, batch_size: int, rank: int, alpha: float,
                       dropout: float, targets: str, lr: float, max_length: int, seed: int, checkpoint_every: int,
                       threads: int | None, resume: bool, gguf: bool, kd_weight: float) -> None:  # fmt: skip
    """Supervised LoRA on a JSONL of chat examples ({"messages": [...]}; loss on the assistant turns), on CPU.
    Writes the peft adapter (for `engine: hf`, `adapter: DIR`) and adapter.gguf (for `engine: llamacpp`,
    `adapter: DIR/adapter.gguf`)."""
    from tandemlm.cli_support import errors_to_exit_codes
    from tandemlm.train.lora import LoraSettings, train_lora

    with errors_to_exit_codes():
        if threads:
            import torch

            torch.set_num_threads(threads)
        chosen = tuple(t.strip() for t in targets.split(",") if t.strip())
        settings = LoraSettings(rank=rank, alpha=alpha, dropout=dropout, targets=chosen, lr=lr, steps=steps,
                                batch_size=batch_size, max_length=max_length, seed=seed,
                                checkpoint_every=checkpoint_every, kd_weight=kd_weight)  # fmt: skip
        command = " ".join(["tandem", *sys.argv[1:]])
        report = train_lora(base, data, out_dir, settings, resume=resume, gguf=gguf, command=command,
                            log=lambda s: click.echo(s, err=True))  # fmt: skip
        click.echo(f"loss {report.losses[0]:.3f} -> {report.losses[-1]:.3f} over {report.steps} steps, "
                   f"{report.tokens} tokens in {report.seconds:.0f} s; adapter in {out_dir}")  # fmt: skip


@train.command("kd")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, help="The examples with teacher_top added (JSONL); a rerun resumes.")
@click.option("--teacher", default="cloud", show_default=True, help="The config model that scores the answers.")
@click.option("--base", default="catalog:qwen2.5-coder-0.5b", show_default=True,
              help="The student to be tuned (its tokenizer and chat template lay out the ids).")  # fmt: skip
@click.option("--top-k", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--max-length", default=1024, show_default=True, type=click.IntRange(min=16),
              help="The same as the training run's.")  # fmt: skip
@click.option("--threads", default=None, type=click.IntRange(min=1), help="llama.cpp threads.")
@config_option
def train_kd(data: str, out: str, teacher: str, base: str, top_k: int, max_length: int, threads: int | None,
             config: str) -> None:  # fmt: skip
    """Token-level KD targets: the teacher's top-k next-token logprobs at each answer token of a chat JSONL,
    laid out as the student's training will tokenize it; then `tandem train lora OUT --kd-weight W`."""
    from tqdm import tqdm

    from tandemlm.cli_support import errors_to_exit_codes, with_threads
    from tandemlm.config import Runtime, load_config
    from tandemlm.train.kd import teacher_targets

    with errors_to_exit_codes():
        runtime = Runtime(with_threads(load_config(config), teacher, threads))
        bar = tqdm(desc="kd targets", unit="example")
        try:

            def step(n: int, total: int) -> None:
                bar.total = total
                bar.update(n - bar.n)

            counts = teacher_targets(lambda: runtime.model(teacher), base, data, out, top_k=top_k,
                                     max_length=max_length, progress=step)  # fmt: skip
        finally:
            bar.close()
            runtime.close()
        click.echo(f"{counts['examples']} examples ({counts['scored']} scored, {counts['kept']} from an earlier "
                   f"run), {counts['answer_tokens']} answer tokens with the teacher's top-{top_k}: {out}"
                   + ("" if counts["teacher_loaded"] else " (the teacher was not loaded)"))  # fmt: skip


@train.command("distill")
@click.option("--out", "out_dir", required=True, help="Directory for the examples, the selection and the adapter.")
@click.option("--dataset", default="gsm8k", show_default=True, type=click.Choice(["gsm8k"]))
@click.option("--train-items", default=None, type=click.IntRange(min=1),
              help="The first N train-split items of the seeded sample (default: those the teacher has).")  # fmt: skip
@click.option("--select", "which", default="selected", show_default=True, type=click.Choice(["all", "selected"]))
@click.option("--source", default="teacher", show_default=True,
              type=click.Choice(["teacher", "reference", "teacher+reference"]),
              help="Targets: the teacher's answers, GSM8K's references, or the teacher's where right.")  # fmt: skip
@click.option("--student-sure", default=0.9, show_default=True, type=click.FloatRange(0, 1),
              help="A right student answer at least this confident (exp mean token logprob) is dropped.")  # fmt: skip
@click.option("--teacher-sure", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="A right teacher answer below this confidence is dropped (where measured).")  # fmt: skip
@click.option("--outcomes", "outcomes_dir", default="bench/outcomes", show_default=True)
@click.option("--teacher-table", default="cloud", show_default=True, help="Outcome table of the teacher's answers.")
@click.option("--student-table", default="edge", show_default=True, help="Outcome table of the student's answers.")
@click.option("--teacher", default=None, help="A config model that answers the items its table lacks (appended).")
@click.option("--student", default=None, help="A config model that answers the items its table lacks (appended).")
@click.option("--base", default=None, help="The model to tune (default: the source of the config's edge model).")
@click.option("--steps", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--rank", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--max-length", default=1024, show_default=True, type=click.IntRange(min=16))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=None, type=click.IntRange(min=1), help="torch and llama.cpp threads.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--no-gguf", is_flag=True, help="Skip the llama.cpp adapter (adapter.gguf).")
@config_option
def train_distill(out_dir: str, dataset: str, train_items: int | None, which: str, source: str, student_sure: float,
                  teacher_sure: float, outcomes_dir: str, teacher_table: str, student_table: str, teacher: str | None,
                  student: str | None, base: str | None, steps: int, rank: int, lr: float, max_length: int, seed: int,
                  threads: int | None, resume: bool, no_gguf: bool, config: str) -> None:  # fmt: skip
    """Selective distillation (LLKD-style): keep the train items where the teacher is right and the student
    wrong or unsure, and LoRA-tune the student on the teacher's answers to them (sequence-level KD)."""
    from tandemlm.cli_support import errors_to_exit_codes, with_threads
    from tandemlm.config import Runtime, load_config
    from tandemlm.train.distill import SelectionSettings, distill, train_pool
    from tandemlm.train.lora import LoraSettings

    with errors_to_exit_codes():
        from tandemlm.bench.outcomes import build_table, read_table

        cfg = load_config(config)
        tables = {role: Path(outcomes_dir) / dataset / f"{name}.jsonl"
                  for role, name in (("teacher", teacher_table), ("student", student_table))}  # fmt: skip
        covered = sum(o.split == "train" for o in read_table(tables["teacher"]))
        items = train_pool(dataset, train_items or covered or None)
        for role, model_name in (("teacher", teacher), ("student", student)):
            if model_name:
                cfg_t = with_threads(cfg, model_name, threads)
                runtime = Runtime(cfg_t)
                try:
                    for _ in build_table(runtime.model(model_name), items, tables[role]):
                        pass
                finally:
                    runtime.close()
        rows = {role: {o.id: o for o in read_table(path)} for role, path in tables.items()}
        if threads:
            import torch

            torch.set_num_threads(threads)
        edge = cfg.models.get("edge")
        base_model = base or getattr(edge, "source", None)
        if not base_model:
            raise click.BadParameter("name the model to tune with --base (the config has no edge model source)")
        lora = LoraSettings(rank=rank, lr=lr, steps=steps, max_length=max_length, seed=seed)
        picked, report = distill(
            items, rows["teacher"], rows["student"], base_model, out_dir, lora, which=which, source=source,  # type: ignore[arg-type]
            settings=SelectionSettings(student_sure, teacher_sure), resume=resume, gguf=not no_gguf,
            command=" ".join(["tandem", *sys.argv[1:]]), log=lambda s: click.echo(s, err=True),
        )  # fmt: skip
        click.echo(f"{which}: kept {picked['kept']} of {picked['with_target']} items with a target "
                   f"({picked['share_kept']:.1%}; {picked['items']} in the pool); {report.trained_tokens} answer "
                   f"tokens of {report.tokens} in {report.seconds:.0f} s; adapter in {out_dir}")  # fmt: skip


@train.command("curate")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, help="The kept examples (JSONL); scores are cached beside it.")
@click.option("--by", default="perplexity", show_default=True, type=click.Choice(["perplexity", "gap"]))
@click.option("--keep", "fraction", default=0.5, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--order", default="mid", show_default=True, type=click.Choice(["low", "mid", "high"]),
              help="Which part of the ranking to keep (Ankner et al.: mid/high best for perplexity).")  # fmt: skip
@click.option("--model", "model_name", default="edge", show_default=True, help="The scoring (student) model.")
@click.option("--teacher", default="cloud", show_default=True, help="The teacher model, for --by gap.")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="llama.cpp threads.")
@config_option
def train_curate(data: str, out: str, by: str, fraction: float, order: str, model_name: str, teacher: str,
                 threads: int | None, config: str) -> None:  # fmt: skip
    """SLM-guided curation: score a chat JSONL by the edge model's perplexity of each answer (Ankner et al.) or
    by the student-teacher loss gap (SALT-style) and keep a fraction of it."""
    from tandemlm.cli_support import errors_to_exit_codes, with_threads
    from tandemlm.config import Runtime, load_config
    from tandemlm.train.curate import curate

    with errors_to_exit_codes():
        cfg = with_threads(load_config(config), model_name, threads)
        if by == "gap":
            cfg = with_threads(cfg, teacher, threads)
        runtime = Runtime(cfg)
        try:
            report = curate(data, out, runtime.model(model_name), by=by, fraction=fraction, order=order,  # type: ignore[arg-type]
                            teacher=runtime.model(teacher) if by == "gap" else None)  # fmt: skip
        finally:
            runtime.close()
        click.echo(f"kept {report['kept']} of {report['examples']} examples ({by} {order}, scores "
                   f"{report['score_kept'][0]:.3g}..{report['score_kept'][1]:.3g} of "
                   f"{report['score_all'][0]:.3g}..{report['score_all'][1]:.3g}) in {out}")  # fmt: skip
