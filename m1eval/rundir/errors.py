"""The errors of run folders, in a module of their own so the file gateway (``runfiles``) and the
store (``store``) raise the same classes without importing each other."""

from __future__ import annotations


class StoreError(Exception):
    """A run folder cannot be used as asked."""


class RunLockedError(StoreError):
    """Another process is writing to this run folder."""


class UnsafeRunFile(StoreError):
    """A run file (or the run folder) is a symbolic link or not a regular file; it is neither read nor written."""


class StoreWriteError(StoreError):
    """A run file could not be written (a full disk, a read-only folder); nothing half-written is left."""
