"""The key of the suppression and opt-out hashes, and the hashes themselves (HMAC-SHA256).

An erased person must not come back with the next import, yet their email and phone may not be kept. The
suppression list therefore holds ``HMAC(key, "email:<normalized email>")`` (or ``phone:<E.164>``): a database
dump alone cannot turn a hash back into an address or test guesses without the key.

The key comes from ``LEADS_SUPPRESSION_KEY``; when unset, a random key is generated once into
``$LEADS_HOME/suppression.key`` (mode 0600) and reused. Losing that file makes earlier suppressions unmatchable,
so production deployments set the variable from their secret store.

The same hash is the blind index of the sealed emails and phone numbers (``lib/privacy/crypto.py``): changing
this key makes every ``*_bidx`` column, suppression and opt-out unmatchable, so it is not rotated with the
encryption keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final, Literal

from leads_pipeline.lib.errors import ConfigurationError
from leads_pipeline.lib.runtime import leads_home

ENV_VAR: Final = "LEADS_SUPPRESSION_KEY"
KEY_FILE: Final = "suppression.key"
Kind = Literal["email", "phone"]


def suppression_key() -> bytes:
    """The HMAC key: the environment variable, else the key file under the leads home (created if missing)."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        if len(configured) < 16:
            raise ConfigurationError(f"{ENV_VAR} is too short; use at least 16 characters (e.g. 32 random bytes hex)")
        return configured.encode("utf-8")
    path = leads_home() / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ConfigurationError(f"{path}: the suppression key is damaged (too short); restore it from a backup")
    return key.encode("ascii")


def _create_key_file(path: Path) -> None:
    """A process stopped while creating the file left it empty, and every later command refused to run ("damaged:
    restore it from a backup", with no backup to restore); a power cut could empty it after suppressions and
    blind indexes hashed under it were committed. Another process's file, linked first, wins."""
    write_key_file(path, secrets.token_hex(32) + "\n", only_if_missing=True)


def write_key_file(path: Path, text: str, *, only_if_missing: bool) -> None:
    """Write ``text`` beside ``path`` (mode 0600), sync it, link it into place (``only_if_missing``: a file
    another process linked first is kept) or rename it onto the old file, and sync the folder. A reader never
    sees a half-written key file, and a key is on disk before anything is hashed or sealed under it: the database
    makes its commits durable, and a power cut must not leave values under a key that the file lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if only_if_missing:
            with contextlib.suppress(FileExistsError):
                os.link(scratch, path)
        else:
            os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def subject_hash(kind: Kind, value: str, key: bytes | None = None) -> str:
    """The keyed hash of one normalized identifier (hex)."""
    message = f"{kind}:{value}".encode()
    return hmac.new(key if key is not None else suppression_key(), message, hashlib.sha256).hexdigest()
