"""The one base class of this project's errors: a problem the user can fix, told in one message.

Every error class of ``htr``, ``data_prep`` and ``run_trocr.py`` derives from ``HTRError`` (and keeps its
builtin kind, ``ValueError`` or ``RuntimeError``, for callers that catch those), so an entry point catches
one class and prints the message instead of a traceback, and a new error class cannot be forgotten there.
"""


class HTRError(Exception):
    """A problem with the user's data, recipe, command line or environment, with what to do about it."""
