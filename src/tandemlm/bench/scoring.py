"""Scoring answers: GSM8K by the final number, HumanEval by running the unit tests on the completion.

Model-written code is untrusted: it runs in a separate interpreter (isolated mode, empty temp
directory, no sockets, capped memory and CPU time) and is killed when the time limit passes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import textwrap

from tandemlm.bench.datasets import Item

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)
GUARD = textwrap.dedent(
    """
    import resource, socket
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (10, 10))
    def _no_network(*args, **kwargs):
        raise OSError("network access is disabled while scoring")
    socket.socket = _no_network
    socket.create_connection = _no_network
    """
)


def final_number(text: str) -> float | None:
    """The last number in a text ("1,234.5" reads as 1234.5), or None."""
    found = NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def gsm8k_correct(answer: str, reference: str) -> bool:
    got, want = final_number(answer), final_number(reference)
    return got is not None and want is not None and abs(got - want) < 1e-6


def program(item: Item, completion: str) -> str:
    """The completion (a fenced block if there is one) as a whole module, with the item's tests after it."""
    fenced = FENCE.findall(completion)
    code = fenced[0] if fenced else completion
    body = code if f"def {item.entry_point}" in code else item.prompt + code
    return f"{GUARD}\n{body}\n\n{item.tests}\n\ncheck({item.entry_point})\n"


def humaneval_correct(item: Item, completion: str, timeout_s: float = 10.0) -> bool:
    """Run the item's tests against the completion in a sandboxed interpreter; True when they all pass."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", program(item, completion)],
                cwd=tmp, capture_output=True, timeout=timeout_s, check=False, env={"PATH": "/usr/bin:/bin"},
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def correct(item: Item, answer: str) -> bool:
    return humaneval_correct(item, answer) if item.kind == "code" else gsm8k_correct(answer, item.answer)
