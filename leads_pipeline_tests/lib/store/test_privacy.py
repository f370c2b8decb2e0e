"""Erasing a person from the files the store does not hold: the inbox's import files and text logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from leads_pipeline.lib.store.privacy import Person, erase_from_files


def test_a_file_rewritten_without_the_person_is_on_disk_before_it_replaces_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy without the person's lines was renamed over the import file unsynced: a power cut after the
    erasure could leave the file empty, every other row of the import waiting in the inbox lost with hers. Now
    the copy is synced first."""
    waiting = tmp_path / "fair" / "waiting.csv"
    waiting.parent.mkdir()
    waiting.write_text("Email\nana@acme.example\nbo@beta.example\n", encoding="utf-8")
    events: list[str] = []
    sync, replace = os.fsync, os.replace

    def synced(fd: int) -> None:
        events.append(f"sync {Path(os.readlink(f'/proc/self/fd/{fd}')).name}")
        sync(fd)

    def replaced(source: Any, target: Any) -> None:
        events.append(f"rename {Path(source).name} -> {Path(target).name}")
        replace(source, target)

    monkeypatch.setattr(os, "fsync", synced)
    monkeypatch.setattr(os, "replace", replaced)
    person = Person("email", "ana@acme.example", emails=["ana@acme.example"])
    assert erase_from_files([tmp_path], person) == [waiting]
    scratch = f".waiting.csv.{os.getpid()}.partial"
    assert events == [f"sync {scratch}", f"rename {scratch} -> waiting.csv"]
    assert waiting.read_text(encoding="utf-8") == "Email\nbo@beta.example\n"
