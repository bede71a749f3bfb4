"""A peft LoRA adapter as a GGUF LoRA adapter that llama.cpp loads (`lora_path`, config `adapter: PATH.gguf`).

Written with the `gguf` package's writer, as llama.cpp's `convert_lora_to_gguf.py` does it, without needing
llama.cpp's source tree at run time: each `lora_A`/`lora_B` pair becomes `<gguf tensor>.lora_a`/`.lora_b` under
llama.cpp's tensor names; `adapter.lora.alpha` carries the scale (llama.cpp scales by alpha / rank, as peft
does). For the llama architecture the q and k projections' output rows are permuted as the base model's were
when it was converted (llama.cpp's rotary layout differs from HF's): only `lora_B` has those rows.

Checked once against the converter itself (llama-cpp-python 0.3.36's sdist, vendor/llama.cpp,
`convert_lora_to_gguf.py --outtype f32 --base <the dequantised HF directory>`) on a smollm2-135m adapter of all
seven projections: the same 420 tensors, names and shapes, bit for bit, and the same adapter keys.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tandemlm.errors import ModelSourceError, ValidationError, missing_extra

# HF model_type -> llama.cpp architecture, for the architectures of the catalog (others are refused, not guessed)
ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "gemma3": "gemma3", "gemma3_text": "gemma3"}
PERMUTED = frozenset({"llama"})  # architectures whose q/k rows convert_hf_to_gguf.py permutes


def _permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute, on the output rows of `weights`."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def export_gguf_adapter(adapter_dir: str | Path, base_dir: str | Path, out: str | Path, *, f16: bool = False) -> Path:
    """Write the peft adapter in `adapter_dir` (adapter_config.json, adapter_model.safetensors), trained on the
    HF model in `base_dir` (its config.json), as a GGUF LoRA adapter at `out`; float32 unless `f16`."""
    try:
        import gguf
        from safetensors.numpy import load_file
    except ImportError:
        raise missing_extra("gguf and safetensors", "hf") from None
    adapter_dir, out = Path(adapter_dir), Path(out)
    try:
        peft_config = json.loads((adapter_dir / "adapter_config.json").read_text())
        base = json.loads((Path(base_dir) / "config.json").read_text())
        tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    except (OSError, ValueError) as err:
        raise ModelSourceError(f"could not read the adapter in {adapter_dir} or its base in {base_dir}: {err}") from err
    base = base.get("text_config", base) if base.get("model_type") == "gemma3" else base
    model_type = str(base.get("model_type"))
    if model_type not in ARCHITECTURES:
        raise ValidationError(
            f"no GGUF adapter export for model_type {model_type!r}; known: {', '.join(ARCHITECTURES)}"
        )
    arch = ARCHITECTURES[model_type]
    if peft_config.get("peft_type") != "LORA":
        raise ValidationError(f"{adapter_dir} holds a {peft_config.get('peft_type')} adapter, not LoRA")
    rank, alpha = int(peft_config["r"]), float(peft_config["lora_alpha"])
    if peft_config.get("use_rslora"):
        alpha *= math.sqrt(rank)  # rsLoRA scales by alpha / sqrt(r); llama.cpp by alpha / r
    if peft_config.get("rank_pattern") or peft_config.get("alpha_pattern"):
        raise ValidationError("per-module ranks or alphas cannot be written as one GGUF adapter.lora.alpha")
    enum = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}[arch]
    names = gguf.get_tensor_name_map(enum, int(base["num_hidden_layers"]))
    n_head, n_kv = int(base["num_attention_heads"]), base.get("num_key_value_heads")
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        hf, dot, part = key.removeprefix("base_model.model.").rpartition(".lora_")
        if not dot or part not in ("A.weight", "B.weight"):
            raise ValidationError(f"{adapter_dir}: unexpected adapter tensor {key} (only LoRA A/B of linear layers)")
        gguf_name = names.get_name(f"{hf}.weight", try_suffixes=(".weight",))
        if gguf_name is None:
            raise ValidationError(f"{adapter_dir}: no llama.cpp tensor for {hf} in the {arch} architecture")
        pairs.setdefault(gguf_name, {})[part[0]] = value
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # written whole, then renamed: no reader sees half an adapter
    writer = gguf.GGUFWriter(str(partial), arch)
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    dtype = np.float16 if f16 else np.float32
    for gguf_name, pair in sorted(pairs.items()):
        if set(pair) != {"A", "B"}:
            raise ValidationError(f"{adapter_dir}: {gguf_name} has lora_{next(iter(pair))} without its pair")
        a, b = pair["A"], pair["B"]
        if arch in PERMUTED and gguf_name.endswith(("attn_q.weight", "attn_k.weight")):
            b = _permute(b, n_head, None if gguf_name.endswith("attn_q.weight") else _int(n_kv))
        writer.add_tensor(f"{gguf_name}.lora_a", np.ascontiguousarray(a, dtype=dtype))
        writer.add_tensor(f"{gguf_name}.lora_b", np.ascontiguousarray(b, dtype=dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)
    return out


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
