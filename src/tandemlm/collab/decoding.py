"""What token-level strategies (speculative decoding, token routing) share: the growing answer.

`Decoded` takes the tokens a strategy settles on, stops at an end token, max_tokens or a stop
sequence, and hands back the text that is safe to stream; `final` closes the stream.
"""

from __future__ import annotations

from tandemlm.models.base import LanguageModel, StopScanner
from tandemlm.types import Chunk, Completion, FinishReason, GenerationParams, Usage


class Decoded:
    """The answer so far, read with `reader` (the model that tokenizes and detokenizes for the strategy)."""

    def __init__(self, reader: LanguageModel, prompt: list[int], params: GenerationParams) -> None:
        self.reader, self.prompt, self.params = reader, prompt, params
        self.tokens: list[int] = []
        self.finish: FinishReason = "length"
        self.done = False
        self._scanner = StopScanner(params.stop)

    @property
    def prefix(self) -> list[int]:
        return self.prompt + self.tokens

    @property
    def room(self) -> int:
        return self.params.max_tokens - len(self.tokens)

    def add(self, tokens: list[int]) -> str:
        """Append settled tokens; return the text now safe to stream."""
        for token in tokens:
            if self.reader.is_end_token(token):
                self.finish, self.done = "stop", True
                break
            self.tokens.append(token)
            if self.room <= 0:
                self.done = True
                break
        text = self.reader.detokenize(self.tokens) if self.tokens else ""
        # a character split over tokens reads as U+FFFD until its last byte is in: hold it back, never stream it
        piece, stopped = self._scanner.update(text.rstrip("\ufffd"))
        if stopped:
            self.finish, self.done = "stop", True
        return piece

    def final(self, name: str, decision: str) -> list[Chunk]:
        """The held-back rest of the text, then the final chunk with the completion."""
        rest = self._scanner.rest()
        text = self._scanner.text
        completion = Completion(text, self.finish, Usage(len(self.prompt), len(self.tokens)), name, decision=decision)
        return [*([Chunk(rest)] if rest else []), Chunk("", self.finish, completion)]
