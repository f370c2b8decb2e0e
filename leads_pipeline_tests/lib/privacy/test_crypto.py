"""Sealing PII (AES-GCM with a key id per value), the keyring from the environment or a key file, blind indexes."""

from __future__ import annotations

import base64
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.privacy import crypto
from leads_pipeline.lib.privacy.keys import subject_hash

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()


@pytest.fixture(autouse=True)
def _fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_HOME", str(tmp_path))
    monkeypatch.delenv(crypto.KEYS_VAR, raising=False)
    monkeypatch.delenv(crypto.ACTIVE_VAR, raising=False)
    monkeypatch.delenv("LEADS_SUPPRESSION_KEY", raising=False)
    crypto.forget_keyring()


def test_sealed_values_hide_the_plaintext_differ_each_time_and_open_again() -> None:
    first, second = crypto.seal("ann@example.com"), crypto.seal("ann@example.com")
    assert first is not None and second is not None
    assert first.startswith("enc:k1:") and "ann" not in first and "example" not in first
    assert first != second, "a fresh nonce per value"
    assert crypto.open_value(first) == crypto.open_value(second) == "ann@example.com"
    assert crypto.seal(None) is None and crypto.seal(first) == first, "sealing twice does nothing"
    assert crypto.open_value("plain") == "plain"


def test_sealing_many_values_seals_each_with_its_own_nonce_and_leaves_sealed_ones_alone() -> None:
    values = ["ann@example.com", "ann@example.com", "+14155550100", "Zoë Brontë 日本", ""]
    sealer = crypto.sealer()
    sealed = sealer.seal_many(values)
    assert [s.split(":", 2)[:2] for s in sealed] == [["enc", "k1"]] * len(values)
    assert sealed[0] != sealed[1], "a fresh nonce per value"
    assert len({base64.b64decode(s.split(":", 2)[2])[:12] for s in sealed}) == len(values)
    assert crypto.keyring().open_many(sealed) == values
    again, bob = sealer.seal_many([sealed[2], "bob@example.com"])
    assert again == sealed[2], "sealing twice does nothing"
    assert crypto.open_value(bob) == "bob@example.com" and bob != "bob@example.com"
    assert sealer.seal_many([]) == []


def test_a_damaged_value_or_an_unknown_key_is_a_clear_error() -> None:
    sealed = crypto.seal("+14155550100")
    assert sealed is not None
    tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    with pytest.raises(ConfigurationError, match="does not open"):
        crypto.open_value(tampered)
    with pytest.raises(ConfigurationError, match="'k9', which is not in the keyring"):
        crypto.open_value("enc:k9:" + sealed.split(":", 2)[2])


def test_opening_many_values_equals_opening_each_and_fails_on_a_damaged_one() -> None:
    values = ["ann@example.com", "+14155550100", "Zoë Brontë 日本", ""]
    sealed = [crypto.seal(v) or v for v in values]
    ring = crypto.keyring()
    assert ring.open_many([*sealed, "plain"]) == [*values, "plain"]
    assert ring.open_many(sealed) == values, "all under the active key (the fast way)"
    truncated = sealed[0][:-2]  # base64 with its padding cut: not a value this code wrote
    for damaged in ([sealed[1], truncated], [sealed[1], truncated, "plain"]):  # the fast way and the general one
        with pytest.raises(ConfigurationError, match="does not open"):
            ring.open_many(damaged)


def _rotated_from_a_to_b(monkeypatch: pytest.MonkeyPatch) -> tuple[str, crypto.Keyring]:
    """A value sealed under key a, and the keyring once b is the active key (a rotation under way)."""
    monkeypatch.setenv(crypto.KEYS_VAR, f"a:{KEY_A},b:{KEY_B}")
    monkeypatch.setenv(crypto.ACTIVE_VAR, "a")
    crypto.forget_keyring()
    under_a = crypto.keyring().seal("ann@example.com")
    monkeypatch.setenv(crypto.ACTIVE_VAR, "b")
    crypto.forget_keyring()
    return under_a, crypto.keyring()


def test_opening_many_values_sealed_under_several_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    under_a, ring = _rotated_from_a_to_b(monkeypatch)
    under_b = ring.seal("bob@example.com")
    assert ring.open_many([under_b, under_a, under_b]) == ["bob@example.com", "ann@example.com", "bob@example.com"]


def test_opening_an_arrow_column_keeps_its_nulls_and_opens_values_under_any_key_or_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Arrow opens a column of values all under the active key in one pass; a column with a value under an
    older key (a rotation under way) or a plain one is opened value by value, to the same text."""
    import pyarrow as pa

    under_a, ring = _rotated_from_a_to_b(monkeypatch)
    values = ["Zoë Brontë 日本", None, "", "+14155550100"]
    active = pa.array([None if v is None else ring.seal(v) for v in values], type=pa.large_string())
    assert ring.open_array(active).to_pylist() == values
    mixed = pa.array([under_a, None, "plain", ring.seal("bob@example.com")], type=pa.large_string())
    assert ring.open_array(mixed).to_pylist() == ["ann@example.com", None, "plain", "bob@example.com"]
    damaged = pa.array([ring.seal("x")[:-2]], type=pa.large_string())
    with pytest.raises(ConfigurationError, match="does not open"):
        ring.open_array(damaged)


def test_opening_a_frame_opens_its_sealed_columns_and_keeps_their_dtype() -> None:
    import pandas as pd
    import pyarrow as pa

    sealed = [crypto.seal("ann@example.com"), None, crypto.seal("bob@example.com")]
    frame = pd.DataFrame(
        {
            "email": pd.array(pa.array(sealed, type=pa.large_string()), dtype=pd.StringDtype("pyarrow")),
            "phone": pd.array([None, None, None], dtype=pd.StringDtype("pyarrow")),
            "company": ["Acme", "Beta", "Gamma"],
        },
        index=[7, 8, 9],
    )
    opened = crypto.open_frame(frame)
    assert opened["email"].isna().tolist() == [False, True, False]
    assert opened["email"].dropna().tolist() == ["ann@example.com", "bob@example.com"]
    assert opened["email"].dtype == pd.StringDtype("pyarrow") and list(opened.index) == [7, 8, 9]
    assert opened["phone"].isna().all() and opened["company"].tolist() == ["Acme", "Beta", "Gamma"]


def test_the_key_file_is_created_private_once_and_a_new_key_becomes_active(tmp_path: Path) -> None:
    old = crypto.seal("x")
    path = tmp_path / crypto.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    crypto.add_file_key(path, "k2")
    ring = crypto.keyring()
    assert list(ring.keys) == ["k1", "k2"] and ring.active == "k2"
    new = crypto.seal("x")
    assert new is not None and new.startswith("enc:k2:")
    assert crypto.open_value(old) == crypto.open_value(new) == "x", "old values still open under their key"


def test_a_new_key_is_on_disk_before_it_can_seal_anything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The key file was renamed into place without being flushed to disk: after a power cut the database kept
    its committed values sealed under the new key while the file could come back empty or without the key, and
    every one of those values was lost. Now the new file's data is synced, then renamed, then the rename synced."""
    crypto.seal("x")  # creates the key file with k1
    path = tmp_path / crypto.KEY_FILE
    events: list[str] = []
    sync, replace = os.fsync, os.replace

    def synced(fd: int) -> None:
        target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        events.append("folder" if target == tmp_path else "file" if target.name.startswith(f".{path.name}.") else "?")
        sync(fd)

    def replaced(source: Any, target: Any) -> None:
        events.append("rename" if Path(target) == path else "?")
        replace(source, target)

    monkeypatch.setattr(os, "fsync", synced)
    monkeypatch.setattr(os, "replace", replaced)
    crypto.add_file_key(path, "k2")
    assert events == ["file", "rename", "folder"]
    assert list(crypto.keyring().keys) == ["k1", "k2"]


def test_the_active_id_chooses_among_the_key_files_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    crypto.seal("x")  # creates the key file with k1
    crypto.add_file_key(tmp_path / crypto.KEY_FILE, "k2")
    monkeypatch.setenv(crypto.ACTIVE_VAR, "k1")
    sealed = crypto.seal("street 1")
    assert sealed is not None and sealed.startswith("enc:k1:"), "LEADS_ENCRYPTION_KEY_ID is not ignored"
    monkeypatch.setenv(crypto.ACTIVE_VAR, "k7")
    with pytest.raises(ConfigurationError, match=r"LEADS_ENCRYPTION_KEY_ID='k7' names no key of .*encryption.keys"):
        crypto.keyring()


def test_the_environment_names_the_keys_and_the_active_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(crypto.KEYS_VAR, f"a:{KEY_A},b:{KEY_B}")
    monkeypatch.setenv(crypto.ACTIVE_VAR, "a")
    sealed = crypto.seal("street 1")
    assert sealed is not None and sealed.startswith("enc:a:")
    assert not (tmp_path / crypto.KEY_FILE).exists()
    monkeypatch.setenv(crypto.ACTIVE_VAR, "c")
    with pytest.raises(ConfigurationError, match="names no key"):
        crypto.keyring()
    monkeypatch.setenv(crypto.KEYS_VAR, "a:c2hvcnQ=")
    with pytest.raises(ConfigurationError, match="must be 32 bytes"):
        crypto.keyring()


def test_blind_index_is_the_keyed_hash_of_the_normalized_value() -> None:
    assert crypto.blind_index("email", " Ann@Example.com ") == subject_hash("email", "ann@example.com")
    assert crypto.blind_index("phone", "+14155550100") == crypto.blind_index("mobile_phone", "+14155550100")
    assert crypto.blind_index("email", None) is None
    columns = crypto.lead_columns("email", "ann@example.com")
    assert columns["email_domain"] == "example.com" and columns["email_bidx"] == subject_hash(
        "email", "ann@example.com"
    )
    assert crypto.open_value(columns["email"]) == "ann@example.com"


def test_payloads_seal_their_contact_values_and_open_whole() -> None:
    payload = {"email": "ann@example.com", "status": "valid", "nested": [{"phone": "+14155550100", "n": 1}]}
    sealed = crypto.seal_payload(payload)
    assert "ann@example.com" not in str(sealed) and "+14155550100" not in str(sealed)
    assert sealed["status"] == "valid"
    assert crypto.open_payload(sealed) == payload


def test_a_sealer_travels_to_worker_processes_with_its_keys() -> None:
    sealer = pickle.loads(pickle.dumps(crypto.sealer()))
    sealed = sealer.seal("ann@example.com")
    assert crypto.open_value(sealed) == "ann@example.com"
    assert sealer.blind_index("email", "Ann@example.com") == crypto.blind_index("email", "ann@example.com")
    assert sealer.seal("x", deterministic=True) == sealer.seal("x", deterministic=True)
    found = sealer.subjects("call +1 (415) 555-0100 or mail Ann@Example.com")
    assert set(found) == {subject_hash("phone", "+14155550100"), subject_hash("email", "ann@example.com")}


@pytest.mark.parametrize("key_length", [16, 32, 64, 65, 100])
def test_a_sealers_hash_is_the_keyed_hash_whatever_the_keys_length(key_length: int) -> None:
    blind = bytes(range(key_length))
    sealer = crypto.Sealer(crypto.keyring(), blind)
    for kind, value in (("email", "ann@example.com"), ("phone", "+14155550100"), ("street", "Zoë Brontë 日本")):
        assert sealer.hash(kind, value) == subject_hash(kind, value, blind)  # type: ignore[arg-type]
    assert sealer.hash("phone", "") == subject_hash("phone", "", blind)
    assert pickle.loads(pickle.dumps(sealer)).hash("email", "a@b.c") == subject_hash("email", "a@b.c", blind)


def test_a_sealer_blind_indexes_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    sealer = crypto.sealer()
    values = ["+14155550100", "+14155550101", "+14155550100", " Ann@Example.com", "+14155550100"]
    expected = [sealer.blind_index("phone" if "@" not in v else "email", v) for v in values]
    hashed: list[str] = []
    real = crypto.Sealer.blind_index

    def counted(self: crypto.Sealer, field: str, value: str) -> str:
        hashed.append(value)
        return real(self, field, value)

    monkeypatch.setattr(crypto.Sealer, "blind_index", counted)
    phones = sealer.blind_indexes("phone", values[:3] + values[4:])
    assert phones == expected[:3] + expected[4:] and hashed == ["+14155550100", "+14155550101"]
    assert sealer.blind_indexes("email", [values[3]]) == [expected[3]]
    assert expected[3] == subject_hash("email", "ann@example.com") and sealer.blind_indexes("email", []) == []


def test_an_opener_opens_text_and_json_and_looks_the_keyring_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    emails = [crypto.seal(f"lead{i}@example.com") for i in range(50)]
    payload = {"email": "ann@example.com", "n": 1}
    sealed_payload = json.dumps(crypto.seal_payload(payload)).encode()
    lookups = []
    real = crypto.keyring

    def counted() -> crypto.Keyring:
        lookups.append(1)
        return real()

    monkeypatch.setattr(crypto, "keyring", counted)
    opener = crypto.Opener()
    assert opener.text(b"Acme Inc") == "Acme Inc"
    assert lookups == []  # plain text needs no key
    opened = [opener.text(str(e).encode()) for e in emails]
    assert opened == [f"lead{i}@example.com" for i in range(50)]
    assert opener.json(sealed_payload) == payload
    assert len(lookups) == 1  # per value it cost a quarter of scoring stored leads
