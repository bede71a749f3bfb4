"""`/v1/embeddings`: the sentence embeddings the query routers use (all-MiniLM-L6-v2 in numpy), in OpenAI's shape.

The model loads on the first request, from the local cache only (`tandem data pull minilm` fetches it), and
embeds off the event loop under the request's cancel token. Its id is `minilm` (aliases below); it is not a
pipeline, so `/v1/models` does not list it.
"""

from __future__ import annotations

import base64
import threading
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tandemlm.collab.routing.embeddings import MiniLM
from tandemlm.errors import ModelNotFoundError, ModelSourceError, ValidationError
from tandemlm.server.protocol import _Wire

MODEL_ID = "minilm"
ALIASES = frozenset({MODEL_ID, "all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})
MAX_INPUTS = 2048  # OpenAI's limit on inputs per request


class EmbeddingRequest(_Wire):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = Field(None, description="accepted for compatibility; not used")

    def texts(self) -> list[str]:
        if self.model not in ALIASES:
            raise ModelNotFoundError(f"no embeddings model named {self.model!r}; known: {MODEL_ID}")
        if self.dimensions is not None and self.dimensions != MiniLM.dim:
            raise ValidationError(f"dimensions must be {MiniLM.dim} (MiniLM's), got {self.dimensions}")
        texts = [self.input] if isinstance(self.input, str) else self.input
        if not texts:
            raise ValidationError("input is empty: send a string or a list of strings")
        if not all(isinstance(t, str) for t in texts):
            raise ValidationError("input must be text: token ids of another model's tokenizer cannot be embedded")
        if len(texts) > MAX_INPUTS:
            raise ValidationError(f"at most {MAX_INPUTS} inputs per request, got {len(texts)}")
        return texts  # type: ignore[return-value]


class Embeddings:
    """The gateway's embedding model, loaded once on first use (thread-safe)."""

    def __init__(self) -> None:
        self._model: MiniLM | None = None
        self._lock = threading.Lock()

    def model(self) -> MiniLM:
        with self._lock:
            if self._model is None:
                try:
                    self._model = MiniLM(fetch=False)
                except ModelSourceError as err:
                    raise ModelSourceError(f"the embeddings model is not available on this gateway: {err}") from err
            return self._model

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Unit-length rows, and the tokens read (texts beyond 256 tokens are truncated, as the model is)."""
        model = self.model()
        tokens = sum(len(e.ids) for e in model.tokenizer.encode_batch(texts))
        return model.embed(texts), tokens


def embedding_response(vectors: np.ndarray, tokens: int, model: str, encoding: str) -> dict[str, Any]:
    """OpenAI's list of embeddings; base64 holds the little-endian float32 bytes (what the SDK asks for)."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
            if encoding == "base64"
            else [float(x) for x in row],
        }
        for i, row in enumerate(vectors)
    ]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
