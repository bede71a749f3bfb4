"""Running untrusted, model-written Python in a bubblewrap (`bwrap`) sandbox.

The code runs as `python3 -I` in fresh user, network, PID, IPC, UTS and cgroup namespaces: the system
directories and the interpreter's prefix are mounted read-only, /proc is the sandbox's own, /dev is minimal,
and a small private tmpfs (the working directory) is the only writable place. The environment is cleared, a
seccomp filter refuses to create processes or threads, rlimits cap memory, CPU time, processes and file size,
and the whole sandbox is killed when the time limit passes. Where bwrap is missing or cannot create user
namespaces, `passes` raises `SandboxUnavailableError` unless the caller asks for the old, unconfined way
(`unsafe=True` or `with unconfined():`), which only the benchmark offers, behind an explicit flag.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os
import platform
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator

from tandemlm.errors import SandboxUnavailableError

FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)
MEMORY_BYTES = 1 << 30  # address space of the sandboxed interpreter
MAX_PROCESSES = 16  # RLIMIT_NPROC; the seccomp filter already refuses new processes, this holds where it cannot
MAX_FILE_BYTES = 16 << 20
TMPFS_BYTES = 64 << 20
INSTALL_HINT = (
    "install bubblewrap (apt-get install bubblewrap) and make sure it can create user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0; in a container, a seccomp "
    "profile that allows unshare and clone)"
)
UNSAFE_GUARD = textwrap.dedent(
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
_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
_UNCONFINED: contextvars.ContextVar[bool] = contextvars.ContextVar("tandemlm_sandbox_unconfined", default=False)


def passes(source: str, timeout_s: float = 10.0, *, unsafe: bool = False) -> bool:
    """Run `source` as a script in the sandbox; True when it exits with status 0 within the time limit.

    `unsafe=True` (or an enclosing `unconfined()`) runs it the old way: a child process of this user that is only
    asked politely not to use the network. Without it, a missing sandbox raises `SandboxUnavailableError`."""
    if unsafe or _UNCONFINED.get():
        return _passes_unconfined(source, timeout_s)
    require()
    with _seccomp_fd() as fds:
        argv = [*_bwrap_argv(fds), "-"]  # the script comes on stdin: no limit on its length, nothing on disk
        script = (_rlimit_prelude(timeout_s) + source).encode(errors="surrogatepass")  # a lone surrogate: a SyntaxError
        return _run(argv, script, timeout_s, fds)


@contextlib.contextmanager
def unconfined() -> Iterator[None]:
    """Within this block `passes` runs code unconfined (the benchmark's `--unsafe-sandbox`); never in a server."""
    token = _UNCONFINED.set(True)
    try:
        yield
    finally:
        _UNCONFINED.reset(token)


def available() -> bool:
    """Whether bwrap is installed and can build the sandbox here (checked once, by running a trivial script)."""
    return _probe() is None


def require() -> None:
    """Raise `SandboxUnavailableError` (a `ConfigError`) saying how to install bwrap when the sandbox cannot run."""
    problem = _probe()
    if problem is not None:
        raise SandboxUnavailableError(f"the code sandbox cannot run: {problem}; {INSTALL_HINT}")


def code_of(completion: str, prompt: str, entry_point: str) -> str:
    """The function a completion defines (its first fenced block if it has one), with the prompt prepended
    when the completion is only the body."""
    fenced = FENCE.findall(completion)
    code = fenced[0] if fenced else completion
    return code if f"def {entry_point}" in code else prompt + code


@functools.cache
def _probe() -> str | None:
    """None when the sandbox works here, else what is wrong."""
    if shutil.which("bwrap") is None:
        return "bwrap is not on PATH"
    if _seccomp_filter() is None and os.geteuid() == 0:  # root is exempt from RLIMIT_NPROC
        return f"running as root on {platform.machine()}, which has no seccomp filter here to cap processes"
    try:
        with _seccomp_fd() as fds:
            argv = [*_bwrap_argv(fds), "-c", "pass"]
            done = subprocess.run(argv, capture_output=True, timeout=30, env=_ENV, pass_fds=fds, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap failed to start: {err}"
    if done.returncode != 0:
        return f"bwrap exited with status {done.returncode}: {done.stderr.decode(errors='replace').strip()[-300:]}"
    return None


def _run(argv: list[str], stdin: bytes, timeout_s: float, pass_fds: list[int]) -> bool:
    """Run bwrap in its own process group and kill the group at the time limit; --die-with-parent and the PID
    namespace take everything inside down with it. Output is discarded, so no amount of it can fill memory here."""
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV,
        pass_fds=pass_fds, start_new_session=True,
    ) as proc:  # fmt: skip
        try:
            proc.communicate(stdin, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return False
    return proc.returncode == 0


def _rlimit_prelude(timeout_s: float) -> str:
    """Lines run inside the sandbox before the code: hard limits it cannot raise again (raising a hard limit
    needs CAP_SYS_RESOURCE in the host's user namespace)."""
    limits = {
        "AS": MEMORY_BYTES, "CPU": max(1, math.ceil(timeout_s)), "NPROC": MAX_PROCESSES, "FSIZE": MAX_FILE_BYTES,
        "CORE": 0,
    }  # fmt: skip
    sets = "".join(f"_r.setrlimit(_r.RLIMIT_{name}, ({value}, {value}))\n" for name, value in limits.items())
    return f"import resource as _r\n{sets}del _r\n"


@contextlib.contextmanager
def _seccomp_fd() -> Iterator[list[int]]:
    """The read end of a pipe holding the seccomp program, for bwrap's --seccomp (no fd where there is none)."""
    program = _seccomp_filter()
    if program is None:
        yield []
        return
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "wb") as out:
            out.write(program)  # a few dozen bytes, far below a pipe's buffer
        yield [read_end]
    finally:
        os.close(read_end)


def _bwrap_argv(seccomp_fds: list[int]) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL"]
    argv += ["--die-with-parent", "--new-session", "--clearenv"]
    for key, value in _ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):  # merged /usr: keep the symlink
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for path in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    # the private tmpfs before the interpreter's binds: a venv under /tmp (a CI checkout) is bound on top of it
    argv += ["--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    for path in _interpreter_dirs():
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]  # a fresh /proc: no host process in it
    argv += ["--chdir", "/tmp", "--remount-ro", "/"]
    for fd in seccomp_fds:
        argv += ["--seccomp", str(fd)]
    return [*argv, sys.executable, "-I"]


def _interpreter_dirs() -> list[str]:
    """The directories this interpreter runs from outside /usr (a venv, and the Python it was made from), as
    given and as resolved, without one under another."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable)}
    dirs.add(os.path.dirname(os.path.realpath(sys.executable)))
    found = {p for d in dirs if d and os.path.isdir(d) for p in (os.path.abspath(d), os.path.realpath(d))}
    kept: list[str] = []
    for path in sorted(found):  # sorted, so a parent comes before what is under it
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in ["/usr", *kept]):
            kept.append(path)
    return kept


@functools.cache
def _seccomp_filter() -> bytes | None:
    """A classic-BPF seccomp program that refuses fork, vfork, clone and clone3 (EPERM; ENOSYS for clone3, whose
    flags live in memory it cannot read) and kills the process on a foreign syscall ABI. None on other machines."""
    machine = platform.machine().lower()
    if struct.calcsize("P") != 8 or machine not in _SYSCALLS:
        return None
    arch, x32_bit, denied = _SYSCALLS[machine]
    load, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JSET|K, BPF_RET|K
    allow, kill, errno = 0x7FFF0000, 0x80000000, 0x00050000
    # seccomp_data: int nr at offset 0, u32 arch at offset 4
    program = [(load, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill), (load, 0, 0, 0)]
    if x32_bit:
        program += [(jset, 0, 1, x32_bit), (ret, 0, 0, kill)]
    for nr in denied:
        program += [(jeq, 0, 1, nr), (ret, 0, 0, errno | (38 if nr == _CLONE3 else 1))]  # ENOSYS, EPERM
    program.append((ret, 0, 0, allow))
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in program)


_CLONE3 = 435
# machine: (AUDIT_ARCH, the x32 syscall bit, the numbers of clone, fork, vfork and clone3 where they exist)
_SYSCALLS = {
    "x86_64": (0xC000003E, 0x40000000, (56, 57, 58, _CLONE3)),
    "amd64": (0xC000003E, 0x40000000, (56, 57, 58, _CLONE3)),
    "aarch64": (0xC00000B7, 0, (220, _CLONE3)),
    "arm64": (0xC00000B7, 0, (220, _CLONE3)),
}


def _passes_unconfined(source: str, timeout_s: float) -> bool:
    """The old way: a separate interpreter in isolated mode in an empty temp directory, as this same user."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", f"{UNSAFE_GUARD}\n{source}"],
                cwd=tmp, capture_output=True, timeout=timeout_s, check=False, env={"PATH": "/usr/bin:/bin"},
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0
