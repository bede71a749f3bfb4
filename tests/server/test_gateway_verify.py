"""Through the gateway and the real openai SDK: a verified pipeline reports each sentence's verdict in `tandem`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx  # noqa: F401  # imported before the server threads start, which import it too
import openai
import pytest

from tandemlm import Runtime, ScriptedModel
from tandemlm.config import load_config
from tandemlm.server import create_app

DOC = "The Eiffel Tower is in Paris. It was finished in 1889 and is 330 metres tall."
ANSWER = "The Eiffel Tower is in Paris. It was finished in 1889. Thanks!"
MESSAGES: Any = [
    {"role": "system", "content": f"Answer from the source.\n<document>{DOC}</document>"},
    {"role": "user", "content": "Where is the Eiffel Tower and when was it finished?"},
]


@pytest.mark.slow
def test_the_tandem_field_carries_the_verification_plain_and_streamed(
    serve_module: Callable[[Any], str], smollm2_path: str
) -> None:
    # the tiny config's verified pipeline: SmolLM2 verifies on the device; the cloud model is scripted
    tiny = load_config("tiny")
    config = tiny.model_copy(update={"pipelines": {"verified-cloud": tiny.pipelines["verified-cloud"]},
                                     "default_pipeline": "verified-cloud"})  # fmt: skip
    runtime = Runtime(config, models={"cloud": ScriptedModel(ANSWER, name="cloud", location="cloud")})
    client = openai.OpenAI(base_url=f"{serve_module(create_app(runtime))}/v1", api_key="unused", max_retries=0)
    r = client.chat.completions.create(model="verified-cloud", messages=MESSAGES)
    assert r.choices[0].message.content == ANSWER
    report = (r.model_extra or {})["tandem"]["verification"]
    spec = tiny.pipelines["verified-cloud"].verify
    assert spec is not None and report["grounded"] is True and report["threshold"] == spec.threshold
    assert [s["text"] for s in report["sentences"]] == ["The Eiffel Tower is in Paris.", "It was finished in 1889."]
    assert all(0 <= s["score"] <= 1 and s["supported"] == (s["score"] >= spec.threshold) for s in report["sentences"])
    assert report["unsupported"] == sum(not s["supported"] for s in report["sentences"])
    assert r.model_extra["tandem"]["decision"].startswith("verify: ")
    assert [c["role"] for c in r.model_extra["tandem"]["calls"]].count("verify") == 2

    stream = client.chat.completions.create(model="verified-cloud", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    (last,) = [c for c in chunks if (c.model_extra or {}).get("tandem")]
    assert last.choices[0].finish_reason == "stop"
    streamed = last.model_extra["tandem"]["verification"]  # type: ignore[index]
    assert [s["text"] for s in streamed["sentences"]] == [s["text"] for s in report["sentences"]]
    assert [s["score"] for s in streamed["sentences"]] == pytest.approx([s["score"] for s in report["sentences"]])

    plain = client.chat.completions.create(model="verified-cloud", messages=[{"role": "user", "content": "Hi"}])
    assert plain.model_extra["tandem"]["verification"] == {"grounded": False, "sentences": [], "unsupported": 0}
    runtime.close()
