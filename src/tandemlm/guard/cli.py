"""`tandem guard`: check a text with a guard of the config, as a guarded pipeline would (registered in cli.py)."""

from __future__ import annotations

import json
import sys
import time

import click

from tandemlm.config import Runtime, load_config
from tandemlm.errors import GuardError, TandemError

# tandem.cli imports this module, so its shared option is restated here rather than imported
config_option = click.option(
    "--config", "-c", envvar="TANDEM_CONFIG", default="default", show_default=True,
    help="Pipeline file, or a packaged config name (default, tiny). Env: TANDEM_CONFIG.",
)  # fmt: skip


@click.group("guard")
def guard_group() -> None:
    """Guards on input and output (the guards: and guard: blocks of a config)."""


@guard_group.command("check")
@config_option
@click.option("--guard", "-g", "name", default=None, help="A guard of the config (default: its default_guard).")
@click.option("--kind", type=click.Choice(["input", "output"]), default="input", show_default=True,
              help="input: TEXT is a request; output: TEXT is an answer (to --context).")  # fmt: skip
@click.option("--context", default=None, help="For --kind output: the request the answer answers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.argument("text")
def guard_check(config: str, name: str | None, kind: str, context: str | None, as_json: bool, text: str) -> None:
    """Screen TEXT (use - to read it from stdin) and print the verdict: unsafe, score (P(unsafe)), category,
    guard, latency_ms.

    Exit code 0 when the text is safe, 1 when it is unsafe (as `tandem audit` exits 1 on a leak), 2 for a usage
    or config error; a guard that fails is an error message with exit code 1."""
    from tandemlm.cli_support import errors_to_exit_codes

    if text == "-":
        text = sys.stdin.read()
    with errors_to_exit_codes():
        runtime = Runtime(load_config(config))
        try:
            guard = runtime.guard(name)
            t0 = time.perf_counter()
            try:
                verdict = guard.check(text, kind="output" if kind == "output" else "input", context=context)
            except TandemError:
                raise
            except Exception as err:  # a guard's own failure is a message, as a guarded pipeline reports it
                raise GuardError(f"the guard {guard.name!r} failed ({type(err).__name__}: {err})") from err
            latency_ms = (time.perf_counter() - t0) * 1000
        finally:
            runtime.close()
    out = {"unsafe": verdict.unsafe, "score": verdict.score, "category": verdict.category, "guard": verdict.guard,
           "latency_ms": round(latency_ms, 3)}  # fmt: skip
    if as_json:
        click.echo(json.dumps(out))
    else:
        from tandemlm.guard.guarded import describe

        state = "unsafe" if verdict.unsafe else "safe"
        click.echo(f"{state}: {describe(verdict)} (guard {verdict.guard}, {latency_ms:.1f} ms)")
    sys.exit(1 if verdict.unsafe else 0)
