"""Experiments: whole comparisons run from the library's parts, one command each."""
