"""Files and folders the tool writes: atomic writes, folder markers, checkpoints, run folders.

Below every stage (``train``, ``evaluate``, ``index`` and the commands all use it, it imports
none of them), so writing safely is one mechanism, not one per command.
"""
