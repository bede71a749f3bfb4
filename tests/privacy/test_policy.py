"""Policies: the strictest action among the spans decides, reasons name types and never values."""

from __future__ import annotations

import pytest

from tandemlm.errors import ValidationError
from tandemlm.privacy.policy import PrivacyPolicy
from tandemlm.privacy.spans import span_at, union

TEXT = "Ann Lee ann@example.com 4111 1111 1111 1111"
PERSON = span_at(TEXT, 0, 7, "PERSON", "presidio", 0.85)
EMAIL = span_at(TEXT, 8, 23, "EMAIL")
CARD = span_at(TEXT, 24, 43, "CREDIT_CARD")


def test_default_pseudonymizes_everything_found() -> None:
    d = PrivacyPolicy().decide([PERSON, EMAIL, CARD])
    assert d.route == "cloud" and d.mask == (PERSON, EMAIL, CARD)
    assert d.reason == "pseudonymized 1 CREDIT_CARD, 1 EMAIL, 1 PERSON"
    assert PrivacyPolicy().decide([]).reason == "no PII found"


def test_strictest_action_wins_per_entity() -> None:
    policy = PrivacyPolicy(entities={"PERSON": "allow", "CREDIT_CARD": "route_local"})
    assert policy.decide([PERSON, EMAIL]).mask == (EMAIL,)
    assert "allowed 1 PERSON" in policy.decide([PERSON, EMAIL]).reason
    local = policy.decide([PERSON, EMAIL, CARD])
    assert (local.route, local.reason) == ("local", "route_local: 1 CREDIT_CARD stays on the device")
    blocked = PrivacyPolicy(entities={"EMAIL": "block"}, default="route_local").decide([PERSON, EMAIL])
    assert blocked.route == "block" and "4111" not in blocked.reason and "ann@" not in blocked.reason
    assert PrivacyPolicy(default="allow").decide([PERSON]).route == "cloud"


def test_invalid_policy_values_are_rejected() -> None:
    with pytest.raises(ValidationError, match="not one of"):
        PrivacyPolicy(default="shred")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="fail"):
        PrivacyPolicy(fail="open")  # type: ignore[arg-type]
    assert PrivacyPolicy(entities={"PERSON": "route_local"}).needs_edge and not PrivacyPolicy().needs_edge


def test_a_merged_span_gets_the_strictest_action_of_its_types() -> None:
    # presidio calls "Ann Lee ann@example.com" a PERSON; the e-mail inside it wins the type, PERSON is kept
    (merged,) = union([[span_at(TEXT, 0, 23, "PERSON", "presidio", 0.9)], [EMAIL]])
    assert merged.entity == "EMAIL" and merged.entities == ("EMAIL", "PERSON")
    assert PrivacyPolicy(entities={"EMAIL": "allow"}).span_action(merged) == "pseudonymize"
    assert PrivacyPolicy(entities={"EMAIL": "allow"}).decide([merged]).mask == (merged,)
    assert PrivacyPolicy(entities={"PERSON": "block"}).decide([merged]).route == "block"
    assert PrivacyPolicy(entities={"EMAIL": "allow", "PERSON": "allow"}).span_action(merged) == "allow"
