"""`tandem privacy scan`: the spans found in a text."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tandemlm.cli import main


def test_scan_prints_spans_and_json_lines() -> None:
    text = "mail ann@example.com, card 4111 1111 1111 1111"
    result = CliRunner().invoke(main, ["privacy", "scan", "-d", "patterns", text])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["EMAIL", "5-20", "pattern", "1.00", "ann@example.com"]
    assert "2 span(s) found" in result.stderr
    result = CliRunner().invoke(main, ["privacy", "scan", "-d", "regex", "--json", "-"], input=text)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["entity"] for r in rows] == ["EMAIL", "CREDIT_CARD"] and rows[1]["text"] == "4111 1111 1111 1111"


def test_scan_unknown_detector_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["privacy", "scan", "-d", "nope", "x"])
    assert result.exit_code == 2 and "unknown PII detector 'nope'" in result.stderr
