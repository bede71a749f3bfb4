"""`import tandemlm` stays light: no torch, transformers, llama.cpp or server stack at import time."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, tandemlm, tandemlm.cli, tandemlm.config, tandemlm.privacy\n"
        "heavy = ('torch', 'transformers', 'llama_cpp', 'fastapi', 'uvicorn', 'openai', 'matplotlib',\n"
        "         'presidio_analyzer', 'spacy', 'phonenumbers')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
