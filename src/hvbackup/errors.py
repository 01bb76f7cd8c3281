"""Errors a user can meet, each with the exit code the CLI returns for it.

Every expected failure is a subclass of HvBackupError: the CLI prints its message on one
line and exits with its code, never with a traceback. The codes are documented in README.md.
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_PARTIAL = 3
EXIT_NO_REPOSITORY = 10
EXIT_LOCKED = 11
EXIT_WRONG_PASSWORD = 12
EXIT_INTERRUPTED = 130


class HvBackupError(Exception):
    """An expected failure with a plain-words message."""

    exit_code = EXIT_FAILED


class UsageError(HvBackupError):
    """The user asked for something that cannot be done as asked."""


class PartialFailure(HvBackupError):
    """Some of the work was done, some source was unreadable or some VM missed the policy."""

    exit_code = EXIT_PARTIAL
