"""``leads keys``: the keyring and its use, a new key from the key file, a rotation to it, audited."""

from __future__ import annotations

import re

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
    # more pages than a table address holds was a PostgreSQL traceback (invalid input syntax for type tid)
    huge = leads.run("keys", "rotate", "--pages", "9223372036854775808")
    assert huge.exit_code == 2 and "Invalid value for '--pages'" in huge.stderr, huge.output
    printed = leads.ok("keys", "rotate", "--pages", "1").splitlines()
    resealed = re.fullmatch(r"rotation \d+: (\d+) rows re-sealed under key k2", printed[-1])
    assert resealed and int(resealed[1]) >= 33, printed[-1]
    progress = [line for line in printed if line.endswith(" pages")]
    assert progress and len(progress) == len(set(progress)), "a line each time the count moves, none repeated"
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


def test_adding_and_rotating_keys_need_an_owner_of_every_list(leads: Leads, monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys seal every list's data: a member of some lists (or of none) may neither add a key (which becomes
    the active one) nor rotate; an owner of every list or a privacy officer may. Both were only audited."""
    monkeypatch.delenv(crypto.KEYS_VAR, raising=False)
    monkeypatch.delenv(crypto.ACTIVE_VAR, raising=False)
    crypto.forget_keyring()
    leads.ok("lists", "create", "fair")
    leads.ok("lists", "share", "fair", "ana", "--role", "editor")
    for user in ("ana", "bob"):
        for args, action in ((("add",), "adding an encryption key"), (("rotate",), "rotating the encryption keys")):
            error = leads.fails("keys", *args, user=user)
            which = "list 'fair'" if user == "ana" else "every list"  # a list is named only to its members
            assert f"user {user!r} does not own {which}; {action} reaches every list" in error, error
            assert "owner of every list or a privacy officer" in error and "LEADS_PRIVACY_OFFICERS" in error
    assert leads.json("keys", "status", "--json", user="ana")["keys"] == ["k1"], "nothing was added"
    assert leads.json("audit", "--action", "keys", "--json") == []
    monkeypatch.setenv("LEADS_PRIVACY_OFFICERS", "dpo")
    assert "added key k2" in leads.ok("keys", "add", user="dpo")
    assert leads.json("keys", "rotate", "--json", user="dpo")["activeKey"] == "k2"
    assert "added key k3" in leads.ok("keys", "add")  # tester owns every list
    crypto.forget_keyring()
