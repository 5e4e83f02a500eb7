"""Exceptions that the CLI turns into one clear line and an exit code (never a traceback)."""

from __future__ import annotations


class I2IError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""

    exit_code = 1


class UsageError(I2IError):
    """Bad command-line usage or option values; exit code 2, raised before any work is done."""

    exit_code = 2


class InputError(I2IError):
    """An input file cannot be read or decoded; names the file."""

    exit_code = 1


class CheckpointError(I2IError):
    """A checkpoint is missing, corrupt, or does not match its config; names the file and key."""

    exit_code = 1


class ResolveError(I2IError):
    """A model reference cannot be resolved (unknown name, missing path, Hub failure)."""

    exit_code = 1


class UnknownModelError(ResolveError):
    """A model reference that names nothing (an unknown registry name, a path that does not exist):
    a usage error, exit code 2. A file or folder that exists but is no model, and Hub or network
    failures, stay ``ResolveError`` (exit 1)."""

    exit_code = 2


class NotAvailableError(ResolveError):
    """A known model whose weights are not here and cannot be fetched now (offline, no network, a
    manual download, not yet published); the message says what to do. Exit code 2: nothing ran."""

    exit_code = 2
