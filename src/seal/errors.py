"""The one exception type the command line turns into a single clear line.

Everything that a user can cause (a missing file, malformed JSON, an absurd
hyperparameter, an unknown model offline) is raised as a `SealError` with a message
that says what was wrong and what to do; `seal` prints it and exits non-zero without a
traceback. Bugs still raise ordinary exceptions.
"""


class SealError(Exception):
    """A problem with the user's input or environment, worded for the user."""
