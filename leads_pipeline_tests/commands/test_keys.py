"""``leads keys``: the keyring and its use, a new key from the key file, a rotation to it, audited."""

from __future__ import annotations

import pytest

from leads_pipeline.lib.privacy import crypto
from leads_pipeline_tests.commands.conftest import Leads
from leads_pipeline_tests.paths import DEMO_FILE


def test_add_a_key_then_rotate_everything_to_it(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crypto.KEYS_VAR, raising=False)
    monkeypatch.delenv(crypto.ACTIVE_VAR, raising=False)
    crypto.forget_keyring()
    leads.ok("lists", "create", "fair")
    leads.ok("import", str(DEMO_FILE), "--list", "fair")
    status = leads.json("keys", "status", "--json")
    assert status["keys"] == ["k1"] and status["active"] == "k1" and status["source"].endswith("encryption.keys")
    values = status["valuesByKey"]["k1"]
    assert values > 30

    assert "added key k2" in leads.ok("keys", "add")
    assert leads.json("keys", "status", "--json")["active"] == "k2"
    summary = leads.json("keys", "rotate", "--json")
    assert summary["activeKey"] == "k2" and summary["resealed"] >= 33
    assert leads.json("keys", "status", "--json")["valuesByKey"] == {"k2": values}
    assert [e["action"] for e in leads.json("audit", "--action", "keys", "--json")] == [
        "keys.rotate-start",
        "keys.rotate",
    ]
    # what the leads show is unchanged
    found = leads.json("search", "--where", "email = ana.garcia@acme.es", "--json")["leads"]
    assert [lead["phone"] for lead in found] == ["+34912345678"]

    monkeypatch.setenv(crypto.KEYS_VAR, "a:" + "A" * 43 + "=")
    assert "add ID:BASE64KEY there" in leads.fails("keys", "add")
    crypto.forget_keyring()
    assert leads.json("keys", "status", "--json")["missingKeys"] == ["k2"]
    assert f"k2: {values} lead values not in the keyring" in " ".join(leads.ok("keys", "status").split())
    crypto.forget_keyring()
