"""What the `tandem` command groups share: the --config option, typed errors as exit codes, benchmark reports."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from tandemlm.config import LlamaCppConfig, TandemConfig
from tandemlm.errors import ConfigError, ModelNotFoundError, TandemError, ValidationError

USAGE_ERRORS = (ConfigError, ValidationError, ModelNotFoundError)

config_option = click.option(
    "--config", "-c", envvar="TANDEM_CONFIG", default="default", show_default=True,
    help="Pipeline file, or a packaged config name (default, tiny). Env: TANDEM_CONFIG.",
)  # fmt: skip


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Typed errors become a one-line message and an exit code; anything else is a bug and keeps its traceback."""
    try:
        yield
    except USAGE_ERRORS as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except TandemError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)


def with_threads(config: TandemConfig, model_name: str, threads: int | None) -> TandemConfig:
    spec = config.models.get(model_name)
    if threads is None or not isinstance(spec, LlamaCppConfig):
        return config
    return config.model_copy(
        update={"models": {**config.models, model_name: spec.model_copy(update={"n_threads": threads})}}
    )


def write_report(result: dict[str, Any], json_out: str, out: str, render: Callable[[dict[str, Any], str], str]) -> None:
    """Save a benchmark's JSON and markdown, both naming the command that produced them."""
    command = " ".join(["tandem", *sys.argv[1:]])
    result["command"] = command
    for path, text in ((json_out, json.dumps(result, indent=1)), (out, render(result, command))):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    click.echo(render(result, command))
