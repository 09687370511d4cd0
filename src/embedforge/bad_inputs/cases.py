"""The whole table: every malformed input embedforge must refuse with one clear message."""

from embedforge.bad_inputs import (
    command_cases,
    image_cases,
    index_cases,
    ivfpq_cases,
    palette_cases,
    recipe_cases,
    run_cases,
)
from embedforge.bad_inputs.case import Case

CASES: list[Case] = [
    *palette_cases.CASES,
    *image_cases.CASES,
    *recipe_cases.CASES,
    *run_cases.CASES,
    *index_cases.CASES,
    *ivfpq_cases.CASES,
    *command_cases.CASES,
]
"""Palette tables, image lists and files, recipes, run folders, index folders, IVF-PQ
builds, then outputs
and options."""
