"""`tandem train`: the group every trainer hangs off (`tandem train guard`; `train lora` is to come)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


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
