"""Running untrusted, model-written Python: a separate interpreter in isolated mode, in an empty temp
directory, with no sockets, capped memory and CPU time, killed when the time limit passes."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import textwrap

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


def passes(source: str, timeout_s: float = 10.0) -> bool:
    """Run `source` as a module behind the guard; True when it exits with status 0 within the time limit."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", f"{GUARD}\n{source}"],
                cwd=tmp, capture_output=True, timeout=timeout_s, check=False, env={"PATH": "/usr/bin:/bin"},
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def code_of(completion: str, prompt: str, entry_point: str) -> str:
    """The function a completion defines (its first fenced block if it has one), with the prompt prepended
    when the completion is only the body."""
    fenced = FENCE.findall(completion)
    code = fenced[0] if fenced else completion
    return code if f"def {entry_point}" in code else prompt + code
