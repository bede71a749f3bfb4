"""Trained guards on MiniLM sentence embeddings: `ClassifierGuard` (harmful requests) and `InjectionGuard`
(prompt injection and jailbreaks in indirect input: retrieved documents, tool output).

Both embed the text with the numpy all-MiniLM-L6-v2 the routers use and apply a small head (logistic, or one
hidden layer) trained by `tandem train guard`. A head is an `.npz` of plain arrays (loaded with
allow_pickle=False) plus its metadata as a JSON string; the packaged ones are in tandemlm/data/guards/.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tandemlm.collab.routing.embeddings import Embedder, embedder_from_spec
from tandemlm.errors import ValidationError
from tandemlm.guard.base import Guard, Kind, Verdict, register

HEAD_FORMAT = "tandem-guard-head/1"
#: MiniLM reads the first 64 tokens of a text for the guards: a request's intent is stated early, a 256-token
#: pass costs about five times as much, and the injection guard reads long inputs window by window anyway.
EMBED_TOKENS = 64


class Head:
    """P(unsafe) from an embedding: sigmoid(relu(x W1 + b1) w2 + b2), or sigmoid(x w2 + b2) with no hidden layer;
    and, when trained with categories, a softmax over `categories` (x Wc + bc)."""

    def __init__(
        self,
        w2: np.ndarray,
        b2: float,
        *,
        w1: np.ndarray | None = None,
        b1: np.ndarray | None = None,
        wc: np.ndarray | None = None,
        bc: np.ndarray | None = None,
        categories: Sequence[str] = (),
        threshold: float = 0.5,
        embedder: str = "all-minilm-l6-v2",
        meta: dict[str, Any] | None = None,
    ) -> None:
        if (w1 is None) != (b1 is None) or (wc is None) != (bc is None):
            raise ValidationError("a head's weight matrices come with their biases")
        if wc is not None and wc.shape[1] != len(categories):
            raise ValidationError(f"category weights have {wc.shape[1]} columns for {len(categories)} categories")
        if not 0.0 < threshold < 1.0:
            raise ValidationError(f"threshold must be in (0, 1), got {threshold}")
        self.w1, self.b1, self.w2, self.b2 = w1, b1, w2.astype(np.float32), float(b2)
        self.wc, self.bc, self.categories = wc, bc, tuple(categories)
        self.threshold = float(threshold)
        self.embedder = embedder
        self.meta = dict(meta or {})

    def scores(self, x: np.ndarray) -> np.ndarray:
        """P(unsafe) per row of `x` [n, d]."""
        h = np.maximum(x @ self.w1 + self.b1, 0.0) if self.w1 is not None else x
        z = np.clip(h @ self.w2 + self.b2, -30.0, 30.0)
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def category(self, x: np.ndarray) -> list[str | None]:
        """The most likely hazard category per row, None when the head has no category layer."""
        if self.wc is None or self.bc is None:
            return [None] * len(x)
        return [self.categories[int(i)] for i in np.argmax(x @ self.wc + self.bc, axis=1)]

    def save(self, path: str | Path) -> None:
        arrays: dict[str, np.ndarray] = {"w2": self.w2, "b2": np.float32(self.b2)}  # type: ignore[dict-item]
        for name in ("w1", "b1", "wc", "bc"):
            if (value := getattr(self, name)) is not None:
                arrays[name] = value.astype(np.float32)
        meta = {"format": HEAD_FORMAT, "categories": list(self.categories), "threshold": self.threshold,
                "embedder": self.embedder, **self.meta}  # fmt: skip
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with Path(path).open("wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> Head:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as err:
            raise ValidationError(f"could not read a guard head from {path}: {err}") from err
        try:
            meta = json.loads(str(arrays.pop("meta")))
            if meta.pop("format", None) != HEAD_FORMAT:
                raise ValidationError(f"{path} is not a {HEAD_FORMAT} file")
            return cls(
                arrays["w2"], float(arrays["b2"]), w1=arrays.get("w1"), b1=arrays.get("b1"), wc=arrays.get("wc"),
                bc=arrays.get("bc"), categories=meta.pop("categories"), threshold=meta.pop("threshold"),
                embedder=meta.pop("embedder"), meta=meta,
            )  # fmt: skip
        except KeyError as err:
            raise ValidationError(f"guard head {path} lacks {err}") from None


def packaged_head(name: str) -> Path:
    """The path of a packaged head (tandemlm/data/guards/NAME.npz)."""
    path = Path(str(resources.files("tandemlm.data").joinpath("guards", f"{name}.npz")))
    if not path.is_file():
        raise ValidationError(f"no packaged guard head {name!r} (expected {path}); train one with: tandem train guard")
    return path


class _EmbeddingGuard(Guard):
    default_head = ""

    def __init__(
        self,
        head: str | Path | Head | None = None,
        *,
        threshold: float | None = None,
        embedder: Embedder | None = None,
        fetch: bool = True,
    ) -> None:
        self.head = head if isinstance(head, Head) else Head.load(head or packaged_head(self.default_head))
        self.threshold = self.head.threshold if threshold is None else float(threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ValidationError(f"threshold must be in (0, 1), got {self.threshold}")
        self.embedder = embedder if embedder is not None else embedder_from_spec(self.head.embedder, fetch=fetch)
        if self.embedder.spec != self.head.embedder:
            raise ValidationError(
                f"the head was trained on {self.head.embedder!r} embeddings, not {self.embedder.spec!r}"
            )

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        """P(unsafe) of each text on its own (the benchmark's batch path)."""
        return self.head.scores(self.embedder.embed(list(texts)))


@register("classifier")
class ClassifierGuard(_EmbeddingGuard):
    """Harmful-request classifier: MiniLM embedding of the text, then the trained head; the category from the
    head's category layer. For an output, the answer is screened on its own (the head was trained on requests)."""

    name = "classifier"
    default_head = "classifier"

    def _check(self, text: str, kind: Kind, context: str | None) -> Verdict:
        x = self.embedder.embed([text])
        return self.verdict(float(self.head.scores(x)[0]), self.head.category(x)[0])


def segments(text: str, words: int, overlap: int) -> list[str]:
    """`text` cut into windows of `words` whitespace-separated words, each overlapping the last by `overlap`, so
    an instruction split by one boundary is whole in the next window. A short text is one segment."""
    if not 0 <= overlap < words:
        raise ValidationError(f"overlap must be in [0, words), got {overlap} with words={words}")
    tokens = text.split()
    if len(tokens) <= words:
        return [text]
    step = words - overlap
    starts = range(0, max(len(tokens) - overlap, 1), step)
    return [" ".join(tokens[s : s + words]) for s in starts]


@register("injection")
class InjectionGuard(_EmbeddingGuard):
    """Prompt-injection / jailbreak detector for indirect input (as Prompt Guard is): the text is scanned in
    overlapping word windows of about the embedder's token budget (a long document's tail would otherwise go
    unread) and the verdict is the highest-scoring window's."""

    name = "injection"
    default_head = "injection"

    def __init__(
        self,
        head: str | Path | Head | None = None,
        *,
        threshold: float | None = None,
        embedder: Embedder | None = None,
        fetch: bool = True,
        segment_words: int = 40,
        overlap_words: int = 12,
    ) -> None:
        super().__init__(head, threshold=threshold, embedder=embedder, fetch=fetch)
        segments("", segment_words, overlap_words)  # validates the pair
        self.segment_words, self.overlap_words = segment_words, overlap_words

    def _check(self, text: str, kind: Kind, context: str | None) -> Verdict:
        return self.verdict(self.max_score(text), "prompt_injection")

    def max_score(self, text: str) -> float:
        """The highest P(injection) over the text's windows."""
        return float(
            self.head.scores(self.embedder.embed(segments(text, self.segment_words, self.overlap_words))).max()
        )

    def score_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.max_score(t) for t in texts])
