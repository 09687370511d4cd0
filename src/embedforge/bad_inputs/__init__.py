"""The promise that bad input gets one clear error, kept as a table anyone can run.

Every malformed input a user may hand embedforge (a palette table, an image list, a recipe,
a run folder, an output path) is one :class:`~embedforge.bad_inputs.case.Case`: how to make
it in an empty folder, the command line that meets it, the Python call that meets it, and
the fragment of the message that says what was expected. :mod:`~embedforge.bad_inputs.probe`
runs a case and lists every promise it broke: exit code 2, one line ``embedforge: error:
...`` naming the file (or key) with that fragment, no traceback, no output, every file that
was there unchanged, and in Python a :class:`~embedforge.errors.UserError`.

The table lives in the package, not among the tests, because two things run it: the tests
(``tests/bad_inputs``) and ``benchmarks/reliability.py``, which writes every message a user
gets into ``benchmarks/results/reliability.md``. Nothing here runs at import.
"""
