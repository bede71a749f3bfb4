"""The torch engine: a causal LM on transformers + torch (CPU), for what llama.cpp cannot do: train, and apply
LoRA adapters as trained (peft).

It loads a catalog model's GGUF through transformers' `gguf_file=` (dequantised to float32; the first load
is cached as a plain HF directory under the models cache, so later loads take a second instead of a minute),
or a local HF directory. The tokenizer is the GGUF's own, converted by transformers: the same token ids and
the same vocabulary fingerprint as the llama.cpp engine for the same file. Like that engine it keeps the KV
cache of the last sequence and starts every operation from the longest prefix it shares with it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tandemlm.errors import EngineError, ModelSourceError, ValidationError, missing_extra
from tandemlm.execution import CancelToken, ModelWorker
from tandemlm.models.base import LanguageModel, StopScanner, check_ids, final_completion, gathered_logprobs
from tandemlm.types import (
    Chunk,
    Completion,
    FinishReason,
    GenerationParams,
    Location,
    LogProbs,
    Price,
    Request,
    TokenLogprob,
    Usage,
)

DTYPES = ("float32", "bfloat16", "float16")
VOCAB = "gguf-vocab.json"  # the GGUF's token texts, beside the dequantised model
CHUNK = 512  # tokens per forward pass when a long prompt is evaluated
# token texts llama.cpp also ends generation at (its end-of-generation auto-detection, llama-vocab.cpp)
END_TEXTS = frozenset(
    {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>",
        "<|end_of_text|>", "<end_of_utterance>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<reponame>",
        "<fim_pad>", "</s>", "<｜end▁of▁sentence｜>",
    }
)  # fmt: skip


def _import_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise missing_extra("torch and transformers", "hf") from None
    return torch


def _dtype(torch: Any, name: str) -> Any:
    if name not in DTYPES:
        raise ValidationError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return getattr(torch, name)


def hf_cache_dir() -> Path:
    """Where dequantised GGUF models are kept as HF directories."""
    from tandemlm.models.sources import models_dir

    return models_dir() / "hf"


def _source_path(source: str) -> Path:
    """A source string (catalog:NAME, path:..., hf://..., or a bare path) as a local GGUF file or HF directory."""
    from tandemlm.models.sources import resolve

    scheme, sep, rest = source.partition(":")
    if scheme == "path" and sep:
        source = rest
    elif sep and scheme in ("catalog", "pypi", "hf"):
        return resolve(source)
    path = Path(source).expanduser()
    if path.is_dir() or path.is_file():
        return path
    raise ModelSourceError(f"model source {source!r} is neither a catalog model, a GGUF file nor an HF directory")


def _dequantised(gguf: Path, dtype: str, *, cache: bool) -> Path:
    """An HF directory holding the GGUF's weights, dequantised, and its tokenizer: cached by the file's identity
    (size, mtime and the first MiB's hash), written to a temporary directory and renamed into place."""
    torch = _import_torch()
    try:
        import gguf as _gguf  # noqa: F401
    except ImportError:
        raise missing_extra("gguf", "hf") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    st = gguf.stat()
    with gguf.open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()
    key = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{head}:{dtype}".encode()).hexdigest()[:16]
    target = hf_cache_dir() / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        if not (target / VOCAB).is_file():  # cached before the vocabulary was kept beside it
            _write_vocab(gguf, target)
        return target
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=_dtype(torch, dtype))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the weights are plain tensors now: what marks the model as "GGUF-quantized" only blocks save_pretrained
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    parent = target.parent if cache else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{gguf.stem}.", dir=parent))
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        _write_vocab(gguf, tmp)
        (tmp / "tandem-source.json").write_text(json.dumps({"gguf": str(gguf), "size": st.st_size, "dtype": dtype}))
        if not cache:
            return tmp
        try:
            os.replace(tmp, target)
        except OSError:  # another process cached it first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelSourceError(f"could not write the dequantised {gguf.name} to {parent}: {err}") from err
    return target


def _write_vocab(gguf: Path, directory: Path) -> None:
    """The GGUF's own token texts (tokenizer.ggml.tokens), as llama.cpp reads them: transformers' conversion
    respells a few (Gemma's runs of spaces become "▁▁"), and the vocabulary fingerprint must not change."""
    from gguf import GGUFReader

    field = GGUFReader(str(gguf)).fields.get("tokenizer.ggml.tokens")
    if field is None:
        return
    texts = [bytes(field.parts[i]).decode("latin-1") for i in field.data]  # latin-1: any bytes, exactly
    partial = directory / f"{VOCAB}.partial"
    partial.write_text(json.dumps(texts))
    partial.replace(directory / VOCAB)


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts its BOS token first when asked to add special tokens (llama.cpp's add_bos)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    plain = list(tokenizer("a", add_special_tokens=False).input_ids)
    return list(tokenizer("a", add_special_tokens=True).input_ids) == [bos, *plain]


def hf_directory(source: str, *, dtype: str = "float32") -> Path:
    """The HF directory of a source: itself when it is one, else the GGUF dequantised into the cache (once)."""
    path = _source_path(source)
    return path if path.is_dir() else _dequantised(path, dtype, cache=True)


def load_causal_lm(source: str, adapter: str | Path | None = None, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) of a source (catalog:NAME, a GGUF path or an HF directory), in eval mode, with a peft
    LoRA adapter directory merged in when given. The training code builds on it."""
    torch = _import_torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = hf_directory(source, dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=_dtype(torch, dtype))
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    if adapter is not None:
        try:
            from peft import PeftModel
        except ImportError:
            raise missing_extra("peft", "hf") from None
        where = Path(adapter).expanduser()
        if not (where / "adapter_config.json").is_file():
            raise ModelSourceError(f"{where} is not a peft adapter directory (no adapter_config.json)")
        with quiet_peft():
            model = PeftModel.from_pretrained(model, str(where)).merge_and_unload()
    model.eval()
    return model, tokenizer


@contextmanager
def quiet_peft() -> Iterator[None]:
    """peft asks transformers 5 for the old name of activation checkpointing, which warns on every call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


class HFModel(LanguageModel):
    """A causal LM run by torch on the CPU, its handle owned by a `ModelWorker` thread like llama.cpp's.

    adapter: a peft LoRA directory (as `tandem train lora` writes), merged into the weights at load.
    chat_template: the tokenizer's template (True), a Jinja template string, or none (False: messages joined by
        blank lines, for base models). n_threads: torch's intra-op threads (process-wide; None leaves them).
    """

    max_concurrency = 1
    supports = frozenset({"logprobs"})

    def __init__(
        self,
        source: str,
        *,
        name: str | None = None,
        location: Location = "edge",
        price: Price | None = None,
        adapter: str | None = None,
        dtype: str = "float32",
        n_ctx: int = 4096,
        n_threads: int | None = None,
        chat_template: bool | str = True,
    ) -> None:
        scheme, _, rest = source.partition(":")
        default = rest if scheme in ("catalog", "pypi") else Path(rest if scheme == "path" else source).name
        super().__init__(name or default.removesuffix(".gguf"), location=location, price=price)
        self._torch = _import_torch()
        if n_threads is not None:
            self._torch.set_num_threads(n_threads)
        self.model, self.tokenizer = load_causal_lm(source, adapter, dtype)
        self.adapter = adapter
        config = self.model.config
        self._n_vocab = int(self.model.get_output_embeddings().weight.shape[0])
        self._n_ctx = min(n_ctx, int(getattr(config, "max_position_embeddings", n_ctx) or n_ctx))
        template = self.tokenizer.chat_template if chat_template is True else chat_template
        self._template: str | None = template or None
        texts = self.tokenizer.convert_ids_to_tokens(list(range(self._n_vocab)))
        self._texts: list[str] = [t if isinstance(t, str) else "" for t in texts]
        vocab = hf_directory(source, dtype=dtype) / VOCAB
        own = json.loads(vocab.read_text()) if vocab.is_file() else None
        self._gguf_vocab: list[bytes] | None = (
            [t.encode("latin-1") for t in own] if own is not None and len(own) == self._n_vocab else None
        )
        names = [t.decode("utf-8", errors="replace") for t in self._gguf_vocab] if self._gguf_vocab else self._texts
        ends = {i for i, t in enumerate(names) if t in END_TEXTS}
        ends |= {i for i in _ids(self.tokenizer.eos_token_id) + _ids(getattr(config, "eos_token_id", None))}
        self._ends = frozenset(ends)
        self._bos = self.tokenizer.bos_token_id
        self._adds_bos = adds_bos(self.tokenizer)
        self._rendered: tuple[Request, list[int]] | None = None
        added = getattr(self.tokenizer, "added_tokens_decoder", {})
        self._added = frozenset(added)
        self._control = frozenset(i for i, t in added.items() if getattr(t, "special", False))
        decoder = getattr(getattr(self.tokenizer, "backend_tokenizer", None), "decoder", None)
        self._unbyte: dict[str, int] | None = None
        if type(decoder).__name__ == "ByteLevel":  # GPT-2 style: each byte is spelled by one printable character
            from transformers.convert_slow_tokenizer import bytes_to_unicode

            self._unbyte = {c: b for b, c in bytes_to_unicode().items()}
        self._owner = ModelWorker(self.name)
        self.owner = self._owner
        # transformers 5 renamed past_key_values to cache (the old name warns)
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self._ids: list[int] = []  # the tokens whose keys and values are in `_past`
        self._past: Any = None

    @property
    def context_length(self) -> int:
        return self._n_ctx

    def clear_cache(self) -> None:
        """Forget the cached sequence, so the next call evaluates its prompt from scratch."""

        def clear() -> None:
            self._ids, self._past = [], None

        self._owner.call(clear)

    def close(self) -> None:
        def release() -> None:
            self._ids, self._past = [], None

        self._owner.close(finish=release)

    # ---- prompts and tokens -----------------------------------------------------------------------

    def render(self, request: Request) -> str:
        """The prompt text the model sees: the chat template applied to the messages."""
        return "".join(part for part, _ in self._prompt_parts(request))

    def _prompt_parts(self, request: Request) -> list[tuple[str, bool]]:
        """The prompt as (text, is_template) parts, as the llama.cpp engine splits it: only template parts may hold
        control tokens, message content is tokenized as plain text."""
        messages = request.messages
        if request.raw or self._template is None:
            return [("\n\n".join(m.content for m in messages), False)]
        nonce = secrets.token_hex(8)
        marks = [f"\ue000{nonce}:{i}\ue001" if m.content else "" for i, m in enumerate(messages)]
        wire = [{"role": m.role, "content": mark} for m, mark in zip(messages, marks, strict=True)]
        try:
            text = self.tokenizer.apply_chat_template(
                wire, chat_template=self._template, tokenize=False, add_generation_prompt=True
            )
        except Exception as err:  # the template's own raise_exception, or a Jinja error
            raise ValidationError(f"{self.name}: the chat template rejected these messages: {err}") from err
        parts: list[tuple[str, bool]] = []
        for message, mark in zip(messages, marks, strict=True):
            if not mark:
                continue
            head, found, text = text.partition(mark)
            if not found or mark in text:
                raise ValidationError(f"{self.name}: the chat template changes message content")
            parts += [(head, True), (message.content, False)]
        return [*parts, (text, True)]

    def _prompt_tokens(self, request: Request) -> list[int]:
        # the base class counts prompt tokens before _generate renders them: remember the last one
        if self._rendered is not None and self._rendered[0] is request:
            return list(self._rendered[1])
        plain = request.raw or self._template is None
        ids: list[int] = []
        for i, (text, template) in enumerate(self._prompt_parts(request)):
            if text:
                ids += self._encode(text, special=template, bos=plain and i == 0)
        self._rendered = (request, ids)
        return list(ids)

    def _count_prompt_tokens(self, request: Request) -> int:
        return len(self._prompt_tokens(request))

    def _encode(self, text: str, *, special: bool, bos: bool) -> list[int]:
        ids = list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=not special).input_ids)
        if bos and self._adds_bos:
            ids = [int(self._bos), *ids]
        return ids

    def _tokenize(self, text: str, add_special: bool) -> list[int]:
        return self._encode(text, special=True, bos=add_special)

    def _detokenize(self, tokens: list[int]) -> str:
        self._check_ids(tokens)
        return str(self.tokenizer.decode(tokens, skip_special_tokens=True))

    def _is_end_token(self, token: int) -> bool:
        return token in self._ends

    def _vocabulary(self) -> list[bytes]:
        return self._gguf_vocab or [t.encode("utf-8") for t in self._texts]

    def _check_ids(self, tokens: list[int]) -> None:
        check_ids(self.name, tokens, self._n_vocab)

    # ---- generation -------------------------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        return final_completion(self._stream(request))

    def _stream(self, request: Request) -> Iterator[Chunk]:
        prompt = self._prompt_tokens(request)
        return self._owner.stream(lambda token, emit: self._decode(request.params, prompt, token, emit))

    def _decode(
        self, params: GenerationParams, prompt: list[int], token: CancelToken, emit: Callable[[Chunk], None]
    ) -> None:
        """On the owner thread: sample token by token (checking the request's token between tokens), release text
        once it cannot begin a stop sequence, then a final chunk with the completion."""
        torch = self._torch
        seed = params.seed if params.seed is not None else secrets.randbelow(2**31)
        generator = torch.Generator().manual_seed(seed)
        scanner = StopScanner(params.stop)
        out: list[int] = []
        entries: list[TokenLogprob] = []
        finish: FinishReason = "length"
        row = self._logits(prompt, len(prompt) - 1)[-1]
        while True:
            token.check()
            chosen = _sample(torch, row, params, generator)
            if chosen in self._ends:
                finish = "stop"
                break
            out.append(chosen)
            if params.logprobs is not None:
                entries.append(self._entry(row, chosen, params.logprobs))
            text = str(self.tokenizer.decode(out, skip_special_tokens=True)).rstrip("\ufffd")  # a split character waits
            piece, stopped = scanner.update(text)
            if piece:
                emit(Chunk(piece))
            if stopped:
                finish = "stop"
                break
            if len(out) >= params.max_tokens or len(prompt) + len(out) >= self._n_ctx:
                break
            row = self._logits(prompt + out, len(prompt) + len(out) - 1)[-1]
        if piece := scanner.rest():
            emit(Chunk(piece))
        logprobs = tuple(entries) if params.logprobs is not None else None
        completion = Completion(scanner.text, finish, Usage(len(prompt), len(out)), self.name, logprobs=logprobs)
        emit(Chunk("", finish, completion))

    def _entry(self, row: np.ndarray, chosen: int, top: int) -> TokenLogprob:
        dist = LogProbs.from_logits(row)
        alternatives = tuple(self._entry_of(i, v) for i, v in dist.top(top)) if top else ()
        own = self._entry_of(chosen, dist.logprob(chosen))
        return TokenLogprob(own.token, own.logprob, own.bytes, alternatives)

    def _entry_of(self, token: int, logprob: float) -> TokenLogprob:
        raw = self._piece(token)
        return TokenLogprob(raw.decode("utf-8", errors="replace"), logprob, raw)

    def _piece(self, token: int) -> bytes:
        """The bytes of one token as llama.cpp's engine gives them: a byte-level token's own bytes (part of a
        character, possibly), control tokens empty; other vocabularies as the token decodes alone."""
        if token in self._control:
            return b""
        text = self._texts[token]
        if self._unbyte is not None and token not in self._added:
            try:
                return bytes(self._unbyte[c] for c in text)
            except KeyError:
                pass
        return text.encode("utf-8") if token in self._added else str(self.tokenizer.decode([token])).encode("utf-8")

    # ---- logits -----------------------------------------------------------------------------------

    def _next_token_logprobs(self, tokens: list[int], top_k: int | None) -> LogProbs:
        return self._logprobs_after(tokens, [len(tokens) - 1], top_k)[0]

    def _logprobs_after(self, tokens: list[int], positions: list[int], top_k: int | None) -> list[LogProbs]:
        self._check_ids(tokens)
        rows = self._owner.call(lambda: self._logits(tokens[: positions[-1] + 1], positions[0]))
        dists = [LogProbs.from_logits(rows[p - positions[0]]) for p in positions]
        return dists if top_k is None else [d.keep_top(top_k) for d in dists]

    def _token_logprobs(self, tokens: list[int], start: int) -> np.ndarray:
        if start < 1:
            raise ValidationError(f"{self.name}: scoring needs at least one context token before the continuation")
        self._check_ids(tokens)
        rows = self._owner.call(lambda: self._logits(tokens[:-1], start - 1))
        return gathered_logprobs(rows, tokens[start:])

    def _logits(self, tokens: list[int], first: int) -> np.ndarray:
        """Raw logits after each prefix tokens[:i+1] for i >= first (on the owner thread), reusing the cached
        keys and values of the prefix shared with the last sequence: a growing prefix costs only its new tokens."""
        torch = self._torch
        if len(tokens) > self._n_ctx:
            raise ValidationError(f"{self.name}: {len(tokens)} tokens exceed the context window of {self._n_ctx}")
        keep = 0
        for cached, new in zip(self._ids[: min(len(self._ids), first)], tokens, strict=False):
            if cached != new:
                break
            keep += 1
        if keep < len(self._ids):
            if keep and self._past is not None and getattr(self._past, "is_croppable", False):
                self._past.crop(keep - len(self._ids))
            else:
                keep, self._past = 0, None
            self._ids = self._ids[:keep]
        rows: list[np.ndarray] = []
        try:
            with torch.inference_mode():
                for start in range(keep, len(tokens), CHUNK):
                    part = tokens[start : start + CHUNK]
                    wanted = sum(1 for j in range(len(part)) if start + j >= first)
                    out = self.model(
                        input_ids=torch.tensor([part]), use_cache=True, logits_to_keep=max(wanted, 1),
                        **{self._cache_arg: self._past},
                    )  # fmt: skip
                    self._past = getattr(out, self._cache_arg)
                    self._ids = tokens[: start + len(part)]
                    if wanted:
                        rows.append(out.logits[0, -wanted:].float().numpy().copy())
        except RuntimeError as err:
            self._ids, self._past = [], None
            raise EngineError(f"{self.name}: torch failed: {err}") from err
        return np.concatenate(rows)


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _sample(torch: Any, row: np.ndarray, params: GenerationParams, generator: Any) -> int:
    """The next token from raw logits: the argmax at temperature 0, else nucleus sampling (seeded)."""
    if params.temperature == 0:
        return int(np.argmax(row))
    logits = torch.from_numpy(row.astype(np.float32)) / params.temperature
    probs = torch.softmax(logits, dim=-1)
    if params.top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(ordered, dim=-1) - ordered < params.top_p  # always keeps the most likely token
        probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
    return int(torch.multinomial(probs, 1, generator=generator).item())


def load_hf(source: str, **options: Any) -> HFModel:
    """Build from a model source string; catalog models get their template flag and their name."""
    from tandemlm.models.catalog import CATALOG

    scheme, _, rest = source.partition(":")
    if scheme in ("catalog", "pypi") and rest in CATALOG and not CATALOG[rest].chat_template:
        options.setdefault("chat_template", False)
    return HFModel(source, **options)
