"""Errors a user can cause: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations


class MouseregError(Exception):
    """A problem with the user's input, with a message that names the input and the fix.

    The command line prints ``str(error)`` on one line and exits with status 2 (no traceback
    unless ``--debug``). Library callers catch it like any exception.
    """


class InputError(MouseregError):
    """An input file, folder or argument is missing, unreadable or inconsistent."""


class RegistrationError(MouseregError):
    """A registration could not produce a trustworthy answer (too few markers, ambiguity, ...)."""
