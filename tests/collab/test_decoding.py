"""`Decoded`, the growing answer of token-level strategies: what it streams is always a prefix of the answer."""

from __future__ import annotations

from tandemlm.collab.decoding import Decoded
from tandemlm.models.scripted import ScriptedModel
from tandemlm.types import GenerationParams


class ByteModel(ScriptedModel):
    """One token per UTF-8 byte, detokenized as a byte-level engine does (a split character reads U+FFFD)."""

    def __init__(self) -> None:
        super().__init__(vocab=[chr(i) for i in range(256)])

    def _detokenize(self, tokens: list[int]) -> str:
        return bytes(tokens).decode("utf-8", errors="replace")


def test_a_character_split_over_tokens_is_streamed_only_when_whole() -> None:
    answer = "café 東京"
    decoded = Decoded(ByteModel(), [0], GenerationParams(max_tokens=64))
    pieces = [decoded.add([byte]) for byte in answer.encode()]
    assert "".join(pieces) + decoded.final("m", "d")[0].text == answer
    assert all("\ufffd" not in p for p in pieces)
    assert pieces[answer.encode().index("東".encode()) + 2] == "東"  # released with its third byte


def test_an_answer_cut_inside_a_character_ends_without_it() -> None:
    decoded = Decoded(ByteModel(), [0], GenerationParams(max_tokens=4))
    pieces = [decoded.add([b]) for b in "ab東".encode()[:4]]
    final = decoded.final("m", "d")
    assert "".join(pieces) + "".join(c.text for c in final) == "ab" == final[-1].completion.text  # type: ignore[union-attr]
