"""The one exception type for mistakes a user can fix (bad file, bad key, bad value).

The CLI prints its message alone, without a traceback, and exits non-zero;
anything else that escapes is a bug and keeps its traceback.

It subclasses :class:`ValueError`, as scikit-learn and pandas users expect a bad value to
raise: ``except ValueError`` around ``PaletteEmbedder().fit(df)`` catches it.
"""


class UserError(ValueError):
    """Bad input: the message names the file, row/column or key and what was expected.

    >>> issubclass(UserError, ValueError)
    True
    """
