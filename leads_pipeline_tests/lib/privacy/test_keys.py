"""The suppression key: from the environment, else generated once under the leads home and reused."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.privacy.keys import KEY_FILE, subject_hash, suppression_key


def test_generated_key_is_private_and_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADS_SUPPRESSION_KEY", raising=False)
    monkeypatch.setenv("LEADS_HOME", str(tmp_path))
    first = suppression_key()
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert suppression_key() == first and len(first) == 64
    assert subject_hash("email", "jo@a.example") == subject_hash("email", "jo@a.example", first)
    assert subject_hash("email", "jo@a.example") != subject_hash("phone", "jo@a.example")


def test_the_environment_wins_and_must_be_long_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_HOME", str(tmp_path))
    monkeypatch.setenv("LEADS_SUPPRESSION_KEY", "k" * 32)
    assert suppression_key() == b"k" * 32 and not (tmp_path / KEY_FILE).exists()
    assert subject_hash("email", "jo@a.example") != subject_hash("email", "jo@a.example", b"other-key-000000")
    monkeypatch.setenv("LEADS_SUPPRESSION_KEY", "short")
    with pytest.raises(ConfigurationError, match="too short"):
        suppression_key()


def test_a_key_file_whose_creation_was_stopped_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process stopped between creating the key file and writing the key left it empty: every later command
    failed with "damaged (too short); restore it from a backup", and there was nothing to restore. The file now
    appears only whole, so the next command creates it."""
    monkeypatch.delenv("LEADS_SUPPRESSION_KEY", raising=False)
    monkeypatch.setenv("LEADS_HOME", str(tmp_path))
    draw = secrets.token_hex

    def stopped(n: int) -> str:
        if n == 32:
            raise KeyboardInterrupt
        return draw(n)

    monkeypatch.setattr(secrets, "token_hex", stopped)
    with pytest.raises(KeyboardInterrupt):
        suppression_key()
    monkeypatch.setattr(secrets, "token_hex", draw)
    key = suppression_key()
    assert len(key) == 64 and suppression_key() == key  # made once, then read: hashes made before still match
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]
