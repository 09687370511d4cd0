"""The one exception type for mistakes a user can fix (bad file, bad key, bad value).

The CLI prints its message alone, without a traceback, and exits non-zero;
anything else that escapes is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: the message names the file, row/column or key and what was expected."""
