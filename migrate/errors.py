"""One error tree for the whole toolkit.

Every error an operator can see is a ``MigrateError``: a short *what*, an optional
*where* (file, field path, address, endpoint) and a *hint* saying what to do.
SDK and subprocess errors are wrapped (``raise ... from e``) so callers never
handle boto3, google or kubernetes exceptions directly. ``retryable`` tells
the executor whether trying again can help.
"""

from __future__ import annotations


class MigrateError(Exception):
    """Base of every error the toolkit raises on purpose."""

    exit_code = 1
    retryable = False

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.hint:
            text += f"\n  -> {self.hint}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "what": self.what,
            "where": self.where,
            "hint": self.hint,
            "retryable": self.retryable,
            "exit_code": self.exit_code,
        }


class UsageError(MigrateError):
    """Bad command-line arguments."""

    exit_code = 2


class ConfigError(MigrateError):
    """migrate.yaml is missing, malformed or names something unknown."""

    exit_code = 2


class PlanError(MigrateError):
    """A plan file is unreadable, tampered with, stale, or for another environment."""

    exit_code = 3


class PrerequisiteError(MigrateError):
    """An environment named in ``requires:`` has not completed, or review is required."""

    exit_code = 3


class StateError(MigrateError):
    """Terraform state is corrupt, foreign, of an unsupported version, or failed verification."""

    exit_code = 4


class JournalError(StateError):
    """The run journal is unreadable or inconsistent."""


class LockError(MigrateError):
    """A lock is held by someone else, or could not be released."""

    exit_code = 5

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        holder: dict[str, object] | None = None,
    ) -> None:
        super().__init__(what, where=where, hint=hint)
        self.holder = holder or {}


class ProviderError(MigrateError):
    """A cloud, Kubernetes or terraform call failed. ``retryable`` says if trying again may help."""

    exit_code = 6

    def __init__(
        self,
        what: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(what, where=where, hint=hint)
        self.retryable = retryable


class CredentialsError(ProviderError):
    """Credentials are missing or rejected."""


class TerraformError(ProviderError):
    """The terraform binary failed; carries the command, exit code and stderr tail."""


class GateFailed(MigrateError):
    """A validation check or traffic gate failed; traffic was (or stays) on the old cluster."""

    exit_code = 7


class StepFailed(MigrateError):
    """A step failed in a way that is neither a provider nor a gate error."""

    exit_code = 8


class NotAvailable(MigrateError):
    """A step kind whose implementation has not landed yet. Says so rather than pretending."""

    exit_code = 9
