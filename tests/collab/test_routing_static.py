"""The static MiniLM table (one MiniLM embedding per token, a prompt the mean of its tokens) and MiniLM's
one-thread routing decision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tandemlm.collab.routing import HashEmbedder, MiniLM, MlpRouter, Router
from tandemlm.collab.routing import static as static_module
from tandemlm.collab.routing.embeddings import embedder_from_spec, minilm_dir
from tandemlm.collab.routing.static import STATIC_SPEC, StaticMiniLM, distill
from tandemlm.errors import MissingExtraError, ModelSourceError, ValidationError


def _cached_or_skip() -> Path:
    """MiniLM's cached files; tests never download them. Missing: skip, or fail in CI."""
    try:
        from tandemlm.collab.routing.embeddings import fetch_minilm

        return fetch_minilm(fetch=False)
    except (ModelSourceError, MissingExtraError) as err:
        if os.environ.get("CI"):
            pytest.fail(f"{err} (CI must pull the MiniLM embedding model before the tests)")
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    """A random [vocab, 384] table standing in for the distilled one (distilling takes minutes)."""
    _cached_or_skip()
    return np.random.default_rng(0).normal(size=(30522, 384)).astype(np.float32)


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    _cached_or_skip()
    return MiniLM(fetch=False)


def test_a_prompt_is_the_unit_mean_of_its_tokens_rows_with_no_cut(table: np.ndarray) -> None:
    static = StaticMiniLM(table, fetch=False)
    text = "Natalia sold clips to 48 of her friends"
    ids = static.tokenizer.encode(text, add_special_tokens=False).ids
    assert 101 not in ids and 102 not in ids  # no [CLS]/[SEP]
    want = table[ids].mean(axis=0)
    got = static.embed([text, ""])
    np.testing.assert_allclose(got[0], want / np.linalg.norm(want), atol=1e-6)
    assert np.array_equal(got[1], np.zeros(384, dtype=np.float32))  # no tokens: zeros
    assert got.dtype == np.float32 and static.spec == STATIC_SPEC
    # no 256-token cut: the end of a long prompt still counts
    long = "word " * 600
    assert not np.allclose(static.embed([long + "matrix"]), static.embed([long + "weather"]))
    # one text alone gives the row it gets in a batch
    np.testing.assert_allclose(static.embed([text])[0], got[0], atol=1e-7)
    with pytest.raises(ValidationError, match="30522 rows of 384"):
        StaticMiniLM(table[:10], fetch=False)
    with pytest.raises(ValidationError, match="list of texts"):
        static.embed("one string")


def test_a_router_on_the_static_table_round_trips(
    table: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(static_module, "_cached_table", lambda root: table)
    hard = ["integrate the derivative of the matrix", "prove the eigenvalue bound", "matrix integral proof"] * 4
    easy = ["hello there friend", "thanks a lot", "nice weather today"] * 4
    router = MlpRouter(embedder=StaticMiniLM(fetch=False)).fit(hard + easy, [1.0] * 12 + [0.0] * 12)
    assert np.all(router.score(hard[:3]) > router.score(easy[:3]).max())
    loaded: Any = Router.load(router.save(tmp_path / "mlp.npz"))  # rebuilds the embedder from its spec
    assert loaded.config()["embedder"] == STATIC_SPEC
    queries = ["the eigenvalue of a friend", "hello matrix", ""]
    assert np.array_equal(loaded.score(queries), router.score(queries))
    assert isinstance(embedder_from_spec(STATIC_SPEC, fetch=False), StaticMiniLM)


def test_the_table_is_distilled_once_and_cached(
    table: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "model"
    root.mkdir()
    for name in ("tokenizer.json", "config.json"):
        (root / name).write_bytes((minilm_dir() / name).read_bytes())
    calls = []

    def fake_distill(model: Any) -> np.ndarray:
        calls.append(model)
        return table

    monkeypatch.setattr(static_module, "distill", fake_distill)
    monkeypatch.setattr(static_module, "MiniLM", lambda root, decision_threads: "minilm")
    first = StaticMiniLM(directory=root)
    second = StaticMiniLM(directory=root)
    assert len(calls) == 1 and (root / static_module.TABLE_NAME).exists()
    assert np.array_equal(first.table, second.table)
    assert not list(root.glob("*.tmp*"))


@pytest.mark.slow
def test_a_one_token_text_gets_minilms_own_embedding(minilm: MiniLM) -> None:
    words = ["hello", "matrix", "python", "monkeys"]
    ids = [minilm.tokenizer.encode(w, add_special_tokens=False).ids for w in words]
    assert all(len(i) == 1 for i in ids)
    rows = distill(minilm, [i[0] for i in ids], batch=3)
    np.testing.assert_allclose(rows, minilm.embed(words), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValidationError, match="token ids"):
        distill(minilm, [40_000])


@pytest.mark.slow
def test_one_decision_runs_on_one_blas_thread_and_gives_the_same_embedding(
    minilm: MiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadpoolctl import threadpool_info

    text = "Natalia sold clips to 48 of her friends in April. How many clips did she sell?"
    library = MiniLM(fetch=False, decision_threads=None)
    want = library.embed([text])
    seen: list[int] = []
    forward = minilm._forward

    def spy(*args: Any) -> np.ndarray:
        seen.append(min(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"))
        return forward(*args)

    before = [lib["num_threads"] for lib in threadpool_info()]
    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    monkeypatch.setattr(minilm, "_forward", spy)
    np.testing.assert_allclose(minilm.embed([text]), want, atol=1e-6)
    minilm.embed([text, "a second text"])  # a batch keeps the library's threads
    assert seen[0] == 1 and seen[1] == min(blas)  # OpenMP (torch's, once imported) is not a BLAS pool
    assert [lib["num_threads"] for lib in threadpool_info()] == before  # restored
    with pytest.raises(ValidationError, match="decision_threads"):
        MiniLM(fetch=False, decision_threads=0)


def test_decision_latency_times_every_config_on_every_prompt() -> None:
    from tandemlm.bench.route import decision_latency

    configs = [("hash 64", lambda: HashEmbedder(64)), ("hash 8", lambda: HashEmbedder(8))]
    rows = decision_latency(["a prompt", "another prompt", "a third"], configs, rounds=2)
    assert [(r["config"], r["spec"], r["decisions"]) for r in rows] == [
        ("hash 64", "hash:64", 6),
        ("hash 8", "hash:8", 6),
    ]
    assert all(0 <= r["p50_ms"] <= r["p90_ms"] and r["cpu_p50_ms"] >= 0 for r in rows)
