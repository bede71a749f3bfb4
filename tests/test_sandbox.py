"""The bubblewrap sandbox: every escape the old child process allowed fails inside, and real code still passes.

Each probe runs inside the sandbox and exits 0 only when the escape it tries was refused, so a sandbox that
cannot start at all fails these tests instead of passing them; the host then checks what it can see itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tandemlm import sandbox
from tandemlm.bench.datasets import Item
from tandemlm.bench.scoring import program
from tandemlm.cli import main
from tandemlm.config import Runtime, parse_config
from tandemlm.errors import ConfigError, SandboxUnavailableError
from tandemlm.sandbox import passes, unconfined


@pytest.fixture
def needs_bwrap() -> None:
    """Skip where bwrap truly cannot run, but fail in CI, whose `make install` puts it there."""
    try:
        sandbox.require()
        return
    except SandboxUnavailableError as err:
        problem = str(err)
    if os.environ.get("CI"):
        pytest.fail(f"the sandbox must run in CI (make install installs bubblewrap): {problem}")
    pytest.skip(f"bubblewrap sandbox unavailable here: {problem}")


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one without a working bwrap."""
    monkeypatch.setattr(sandbox, "_probe", lambda: "bwrap is not on PATH")


def probe(code: str, **fmt: object) -> bool:
    """Run a probe (dedented, with `fmt` filled in) in the sandbox."""
    return passes(textwrap.dedent(code).format(**fmt), timeout_s=5.0)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    """A secret in this process's environment and, from its start, in a host process's (where a server's API keys
    sit); yields the secret and that process's pid."""
    value = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("TANDEM_TEST_SECRET", value)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env={**os.environ, "TANDEM_TEST_SECRET": value}
    )
    try:
        yield value, holder.pid
    finally:
        holder.kill()
        holder.wait()


FIND_SECRET = textwrap.dedent(
    """
    import glob, os
    secret = {secret!r}.encode()
    seen = [v.encode() for v in os.environ.values()]
    for path in glob.glob("/proc/*/environ") + ["/proc/{host}/environ", "/proc/{ppid}/environ", "/proc/1/environ"]:
        try:
            seen.append(open(path, "rb").read())
        except OSError:
            pass
    found = any(secret in blob for blob in seen)
    """
)


def test_the_environment_and_every_environ_in_proc_hide_the_hosts_secrets(
    needs_bwrap: None, secret: tuple[str, int]
) -> None:
    value, holder = secret
    fmt = {"secret": value, "host": holder, "ppid": os.getpid()}
    assert passes((FIND_SECRET + "raise SystemExit(found)\n").format(**fmt), unsafe=True) is False
    # the old way reads the secret from /proc; in the sandbox the same probe finds nothing anywhere
    assert probe(FIND_SECRET + "raise SystemExit(found or not seen[-1])\n", **fmt)  # /proc/1/environ was read
    assert probe(
        """
        import os
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        assert len(pids) <= 3, pids  # bwrap's init and this interpreter: no host process is in this /proc
        assert not os.path.exists("/proc/{host}/environ") or {host} <= 3
        assert set(os.environ) <= {{"PATH", "HOME", "PWD", "LC_CTYPE"}}, dict(os.environ)
        """,
        host=holder,
    )


def test_no_socket_reaches_a_port_listening_on_the_hosts_loopback(needs_bwrap: None, tmp_path: Path) -> None:
    with (
        socket.socket() as listener,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagrams,
        socket.socket(socket.AF_UNIX) as abstract,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.3)
        datagrams.bind(listener.getsockname())
        datagrams.settimeout(0.3)
        abstract.bind(f"\0tandem-test-{uuid.uuid4().hex}")
        abstract.listen(8)
        port = listener.getsockname()[1]
        assert probe(
            """
            import _socket, socket
            attempts = [
                lambda: _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM).connect(("127.0.0.1", {port})),
                lambda: socket.create_connection(("127.0.0.1", {port}), timeout=1),
                lambda: socket.create_connection(("localhost", {port}), timeout=1),
                lambda: socket.socket(socket.AF_INET6).connect(("::1", {port})),
                lambda: socket.socket(socket.AF_UNIX).connect({abstract!r}),
                lambda: socket.create_connection(("8.8.8.8", 53), timeout=1),
            ]
            for attempt in attempts:
                try:
                    attempt()
                except OSError:
                    continue
                raise SystemExit("connected")
            # a datagram to the sandbox's own loopback is sent without error, and must never arrive here
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"escaped", ("127.0.0.1", {port}))
            """,
            port=port,
            abstract=abstract.getsockname(),
        )
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected
        with pytest.raises(TimeoutError):
            datagrams.recv(64)  # nothing arrived
        # the old way: `_socket` walks past the monkeypatched `socket.socket` (kept as the reason for the sandbox)
        grab = f"import _socket\n_socket.socket(_socket.AF_INET, _socket.SOCK_STREAM).connect(('127.0.0.1', {port}))"
        assert passes(grab, unsafe=True)
        listener.accept()[0].close()


def test_nothing_outside_the_private_tmpfs_can_be_written(needs_bwrap: None, tmp_path: Path) -> None:
    name = f"tandem-escape-{uuid.uuid4().hex}"
    targets = [tmp_path / name, Path.cwd() / name, Path(sys.prefix) / name, Path(sys.base_prefix) / name]
    try:
        assert probe(
            """
            import os
            for target in {targets!r}:
                try:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    open(target, "w").write("escaped")  # refused, or written to the private /tmp only
                except OSError:
                    pass
            for target in ["/{name}", "/usr/{name}", "/dev/{name}", "/dev/shm/{name}", "/proc/{name}"]:
                try:
                    open(target, "w").write("escaped")
                except OSError:
                    continue
                raise SystemExit("wrote " + target)
            assert os.getcwd() == "/tmp"
            open("scratch.txt", "w").write("the working directory is writable")
            """,
            targets=[str(t) for t in targets],
            name=name,
        )
        assert not [t for t in targets if t.exists()]
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


def test_privileges_cannot_be_regained_to_remount_a_read_only_bind(needs_bwrap: None) -> None:
    name = f"tandem-escape-{uuid.uuid4().hex}"
    target = Path(sys.prefix) / name
    try:
        assert probe(
            """
            import ctypes, os
            status = open("/proc/self/status").read()
            assert "CapEff:\\t0000000000000000" in status and "NoNewPrivs:\\t1" in status, status
            libc = ctypes.CDLL(None, use_errno=True)
            MS_REMOUNT, MS_BIND = 32, 4096
            assert libc.mount(None, {prefix!r}.encode(), None, MS_REMOUNT | MS_BIND, None) != 0  # EPERM
            try:
                open({target!r}, "w").write("escaped")
            except OSError:
                pass
            assert os.getuid() != 0
            """,
            prefix=sys.prefix,
            target=str(target),
        )
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_no_process_or_thread_can_be_started_so_a_fork_bomb_dies_at_once(needs_bwrap: None) -> None:
    assert probe(
        """
        import os, subprocess, threading
        attempts = [os.fork, lambda: subprocess.run(["/usr/bin/true"]), lambda: threading.Thread(target=int).start()]
        for attempt in attempts:
            try:
                attempt()
            except (OSError, RuntimeError):
                continue
            os._exit(1)  # a process or a thread was made
        """
    )
    # bounded, in case the sandbox ever lets one through: 64 sleeping children, no exponential growth
    bomb = "import os, time\nfor _ in range(64):\n    if os.fork() == 0:\n        time.sleep(3)\n        os._exit(0)\n"
    start = time.perf_counter()
    assert passes(bomb, timeout_s=5.0) is False
    assert time.perf_counter() - start < 3.0


def test_memory_is_capped_at_one_gibibyte(needs_bwrap: None) -> None:
    assert passes("x = bytearray(4 << 30)") is False
    assert probe(
        """
        try:
            bytearray(4 << 30)
        except MemoryError:
            pass
        else:
            raise SystemExit("allocated 4 GiB")
        x = bytearray(64 << 20)  # well under the cap
        """
    )


def test_a_file_and_the_tmpfs_are_capped_in_size(needs_bwrap: None) -> None:
    assert probe(
        """
        import errno, os
        try:
            open("big", "wb").write(bytes({file_cap} + 1))  # a short write, or EFBIG
        except OSError as err:
            assert err.errno == errno.EFBIG, err
        assert os.path.getsize("big") <= {file_cap}, "wrote past RLIMIT_FSIZE"
        try:
            for i in range({tmpfs_cap} // {file_cap} + 1):
                open(f"part{{i}}", "wb").write(bytes({file_cap}))
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
        else:
            raise SystemExit("filled more than the tmpfs holds")
        """,
        file_cap=sandbox.MAX_FILE_BYTES,
        tmpfs_cap=sandbox.TMPFS_BYTES,
    )


def sandbox_processes(marker: str) -> list[str]:
    """Host pids whose name is `marker` (a probe names itself through /proc/self/comm)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == marker:
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("body", ["while True:\n    pass\n", "import time\ntime.sleep(60)\n"])
def test_a_loop_or_a_sleep_is_killed_at_the_time_limit_with_everything_it_started(needs_bwrap: None, body: str) -> None:
    marker = f"tdm{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    assert passes(f"open('/proc/self/comm', 'w').write({marker!r})\n{body}", timeout_s=1.0) is False
    assert time.perf_counter() - start < 2.5
    deadline = time.monotonic() + 2.0
    while sandbox_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes(marker) == []


def test_output_is_discarded_so_a_flood_cannot_fill_the_hosts_memory(needs_bwrap: None) -> None:
    assert passes("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeout_s=1.0) is False
    assert passes("print('x' * (8 << 20))\nraise SystemExit(0)\n")


def test_ordinary_code_passes_and_failures_do_not(needs_bwrap: None) -> None:
    assert passes("import collections, hashlib, json, math, re\nassert json.loads('[1, 2]') == [1, 2]\n")
    assert passes("assert 1 + 1 == 3") is False
    assert passes("def f(:\n") is False  # does not parse
    assert passes("x = 1\n" * 200_000)  # longer than one command-line argument may be


def test_humaneval_canonical_solutions_all_pass(needs_bwrap: None, dataset: Callable[[str], list[Item]]) -> None:
    items = dataset("humaneval")
    assert len(items) == 164
    failed = [item.id for item in items if not passes(program(item, item.answer))]
    assert failed == []


def test_without_bwrap_code_is_refused_unless_unsafe_is_asked_for(no_bwrap: None) -> None:
    assert not sandbox.available()
    with pytest.raises(SandboxUnavailableError, match="apt-get install bubblewrap") as err:
        passes("pass")
    assert isinstance(err.value, ConfigError) and "user namespaces" in str(err.value)
    assert passes("pass", unsafe=True) and not passes("assert False", unsafe=True)
    with unconfined():
        assert passes("pass")
    with pytest.raises(SandboxUnavailableError):
        passes("pass")  # the block is over


EXAMPLES_CONFIG = """
models:
  small: {engine: scripted, replies: "def f(x):\\n    return 1\\n"}
  large: {engine: scripted, replies: "from the large model", location: cloud}
pipelines:
  checked:
    strategy: {cascade: {small: small, large: large, signal: examples, threshold: 0.5}}
  by_logprob:
    strategy: {cascade: {small: small, large: large, signal: logprob, threshold: 0.5}}
"""


def test_a_cascade_on_the_examples_signal_refuses_to_build_without_bwrap(no_bwrap: None) -> None:
    runtime = Runtime(parse_config(EXAMPLES_CONFIG))
    with pytest.raises(SandboxUnavailableError, match="'checked'.*examples.*apt-get install bubblewrap"):
        runtime.pipeline("checked")
    assert runtime.pipeline("by_logprob") is not None  # other signals run no code


SCRIPTED_CONFIG = """
models:
  coder: {engine: scripted, replies: "```python\\ndef f():\\n    return 1\\n```"}
pipelines:
  coder: {model: coder}
"""


def test_bench_outcomes_needs_the_sandbox_or_an_explicit_unsafe_flag_and_says_which_it_used(
    no_bwrap: None, tmp_path: Path, dataset: Callable[[str], list[Item]]
) -> None:
    dataset("humaneval")  # cached: the command reads the same file
    config = tmp_path / "pipes.yaml"
    config.write_text(SCRIPTED_CONFIG)
    args = ["bench", "outcomes", "--dataset", "humaneval", "--model", "coder", "--limit", "2", "--no-features"]
    args += ["--dir", str(tmp_path / "outcomes"), "--config", str(config)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code != 0 and "--unsafe-sandbox" in refused.output
    assert "apt-get install bubblewrap" in refused.output
    assert not (tmp_path / "outcomes").exists()  # refused before any model ran
    done = CliRunner().invoke(main, [*args, "--unsafe-sandbox"])
    assert done.exit_code == 0, done.output
    assert "2 new rows" in done.output and "UNCONFINED (--unsafe-sandbox)" in done.output
