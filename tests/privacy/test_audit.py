"""The egress audit: exact and normalised matches in a ledger, and the `tandem audit` exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tandemlm.cli import main
from tandemlm.privacy.audit import audit_ledger, find_leaks, redact

SECRETS = ["4111111111111111", "Ann.Lee@Example.com", "John Smith", "sk-abc", "DE89370400440532013000"]


def ledger(tmp_path: Path, *texts: str) -> Path:
    path = tmp_path / "egress.jsonl"
    rows = [{"time": 0, "model": "cloud", "operation": "generate", "role": "model", "text": t} for t in texts]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_exact_and_normalised_matches(tmp_path: Path) -> None:
    body = json.dumps([{"role": "user", "content": "card 4111-1111 1111-1111, mail ann.lee@example.com"}])
    path = ledger(tmp_path, "clean <PERSON_1>", body, "JOHN   smith and DE89 3704 0044 0532 0130 00", "sk-abc")
    leaks = {(leak.secret, leak.line, leak.match) for leak in audit_ledger(path, SECRETS)}
    assert leaks == {(0, 2, "normalised"), (1, 2, "normalised"), (2, 3, "normalised"), (4, 3, "normalised"),
                     (3, 4, "exact")}  # fmt: skip


def test_json_escapes_are_decoded_and_normalised_matches_respect_word_bounds() -> None:
    escaped = json.dumps({"messages": [{"content": "Jos\u00e9 P\u00e9rez"}]}, ensure_ascii=True)
    assert "\\u00e9" in escaped
    records = [(1, "cloud", escaped), (2, "cloud", "order 94111 1111 1111 11119"), (3, "cloud", "x941111111111111119")]
    leaks = find_leaks(records, ["José Pérez", "4111111111111111"])
    assert [(x.secret, x.line, x.match) for x in leaks] == [(0, 1, "exact"), (1, 3, "exact")]  # decoded; substring


def test_cli_audit_exit_codes_and_redaction(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.txt"
    secrets.write_text("# known secrets\n4111111111111111\n\nJohn Smith\n", encoding="utf-8")
    dirty = ledger(tmp_path, "pay with 4111 1111 1111 1111")
    result = CliRunner().invoke(main, ["audit", str(dirty), "--secrets", str(secrets)])
    assert result.exit_code == 1
    assert "secret 1 (41************11), normalised match" in result.stdout and "4111 1111" not in result.stdout
    assert "1 of 2 secrets found" in result.stderr
    clean = ledger(tmp_path, "pay with <CREDIT_CARD_1>")
    result = CliRunner().invoke(main, ["audit", str(clean), "--secrets", str(secrets), "--json"])
    assert result.exit_code == 0 and result.stdout == ""
    missing = CliRunner().invoke(main, ["audit", str(tmp_path / "nope.jsonl"), "--secrets", str(secrets)])
    assert missing.exit_code == 2
    assert redact("abc") == "***"
