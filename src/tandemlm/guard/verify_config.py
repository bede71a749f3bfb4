"""A pipeline's `verify:` block: `Verified` around the pipeline, checking grounded answers (guard/verify.py).

```yaml
pipelines:
  grounded:
    model: cloud
    verify: {model: edge, threshold: 0.35, chunk_tokens: 400, regenerate: false}
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tandemlm.guard.verify import Verified, Verifier
from tandemlm.models.base import LanguageModel


class VerifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="the edge-located model that verifies (it reads the documents and the answer)")
    threshold: float = Field(0.5, ge=0, le=1, description="P(supported) at or above which a sentence is supported")
    chunk_tokens: int = Field(400, ge=16, description="tokens per sentence-bounded chunk of the documents")
    regenerate: bool = Field(False, description="ask once more, naming the unsupported sentences")
    refs: ClassVar[tuple[str, ...]] = ("model",)

    def verifier(self, model: Callable[[str], LanguageModel]) -> Verifier:
        return Verifier(model(self.model), threshold=self.threshold, chunk_tokens=self.chunk_tokens)

    def build(self, inner: LanguageModel, model: Callable[[str], LanguageModel], name: str) -> LanguageModel:
        return Verified(inner, self.verifier(model), regenerate=self.regenerate, name=name)
