"""The project's exception hierarchy.

Every error says what was expected, what was found, where, and how to fix it. ``TransientError`` marks failures
that a retry can cure (timeouts, 429, 5xx); everything else is permanent and retrying it only wastes credits.
"""

from __future__ import annotations

from typing import Final

INTERRUPTED: Final = "interrupted (the run was terminated or its process stopped): run it again to resume it"
"""What a run stopped by an interrupt (terminated from the UI, Ctrl-C, its process stopped) says it ended with."""


class LeadsError(Exception):
    """Base class: a failure the user can act on. ``str(error)`` is a one-line message meant for the terminal."""


class TransientError(LeadsError):
    """A failure that may succeed if tried again later (network, rate limit, server error)."""


class PermanentError(LeadsError):
    """A failure that will not go away by retrying (bad input, bad configuration, unknown object)."""


class ConfigurationError(PermanentError):
    """A setting, mapping file or configuration file is invalid; the message names the key and the fix."""


class InputFileError(PermanentError):
    """An input file cannot be imported at all (empty, binary, undecodable, malformed header...)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class NotFoundError(PermanentError):
    """A named object (list, import, batch, lead) does not exist."""


class AccessDeniedError(PermanentError):
    """The acting user's role on a list does not allow the action."""
