"""`tandem verify` and `tandem bench verify`: the verifier of a config's verified pipeline, from the shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tandemlm.errors import ConfigError, ValidationError

if TYPE_CHECKING:  # the config module imports this package
    from tandemlm.config import TandemConfig
    from tandemlm.guard.verify_config import VerifyConfig


def verifier_spec(config: TandemConfig, pipeline: str | None) -> VerifyConfig:
    """The `verify:` block of `pipeline`, or of the config's first pipeline that has one."""
    if pipeline is not None:
        if pipeline not in config.pipelines:
            raise ConfigError(f"no pipeline named {pipeline!r}; known: {', '.join(config.pipelines)}")
        spec = config.pipelines[pipeline].verify
        if spec is None:
            raise ConfigError(f"pipeline {pipeline!r} has no verify: block")
        return spec
    for p in config.pipelines.values():
        if p.verify is not None:
            return p.verify
    raise ConfigError("the config has no pipeline with a verify: block (it names the verifier model)")


def read_document(value: str) -> str:
    """TEXT, or @FILE for a file's text, or @- for standard input."""
    if not value.startswith("@"):
        return value
    if value == "@-":
        return sys.stdin.read()
    try:
        return Path(value[1:]).expanduser().read_text(encoding="utf-8")
    except OSError as err:
        raise ValidationError(f"cannot read the document {value[1:]}: {err.strerror or err}") from err


@click.command("verify")
@click.option("--config", "-c", envvar="TANDEM_CONFIG", default="default", show_default=True)
@click.option("--pipeline", "-p", default=None, help="Whose verify: block to use (default: the first that has one).")
@click.option("--document", "-d", required=True, help="The source text, or @FILE (@- for stdin).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON object only.")
@click.argument("claim")
def verify_command(config: str, pipeline: str | None, document: str, as_json: bool, claim: str) -> None:
    """Whether DOCUMENT supports CLAIM: P(supported) from the edge verifier, max over the document's chunks."""
    from tandemlm.cli_support import errors_to_exit_codes
    from tandemlm.config import Runtime, load_config

    with errors_to_exit_codes():
        cfg = load_config(config)
        spec = verifier_spec(cfg, pipeline)
        text = read_document(document)
        runtime = Runtime(cfg)
        try:
            support = spec.verifier(runtime.model).check(text, claim)
        finally:
            runtime.close()
        out = support.to_dict()
        if as_json:
            click.echo(json.dumps(out))
        else:
            verdict = "supported" if support.supported else "NOT supported"
            click.echo(f"{verdict} (P={support.score:.3f}, chunk {support.chunk}, {support.latency_ms:.0f} ms)")
            click.echo(json.dumps(out))


@click.command("verify")
@click.option("--config", "-c", default="default", show_default=True, help="Its first verify: block's model.")
@click.option("--docs", "n_docs", default=30, show_default=True, type=click.IntRange(min=2), help="4 claims each.")
@click.option("--chunk-tokens", default=400, show_default=True, type=click.IntRange(min=16))
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_out", default="bench/results/verify.json", show_default=True)
@click.option("--out", default="bench/results/verify.md", show_default=True)
def bench_verify(config: str, n_docs: int, chunk_tokens: int, seed: int, json_out: str, out: str) -> None:
    """Balanced accuracy of the verifier on claims generated from GSM8K problems (dev-fitted threshold)."""
    from tandemlm.bench.verify import run_verify_bench, to_markdown
    from tandemlm.cli_support import errors_to_exit_codes, write_report

    with errors_to_exit_codes():
        write_report(run_verify_bench(config, n_docs, chunk_tokens, seed), json_out, out, to_markdown)
