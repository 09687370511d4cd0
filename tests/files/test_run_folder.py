from pathlib import Path

import pytest

from embedforge.errors import UserError
from embedforge.files.run_folder import HISTORY, read_history


def test_history_drops_a_last_line_cut_short_by_a_kill(tmp_path: Path) -> None:
    (tmp_path / HISTORY).write_text('{"epoch": 0, "loss": 1.5}\n{"epoch": 1, "lo')
    assert read_history(tmp_path) == [{"epoch": 0, "loss": 1.5}]


def test_history_with_a_broken_line_before_the_last_is_an_error(tmp_path: Path) -> None:
    (tmp_path / HISTORY).write_text('{"epoch": 0, "lo\n{"epoch": 1, "loss": 1.0}\n')
    with pytest.raises(UserError, match="line 1"):
        read_history(tmp_path)


def test_no_history_is_an_empty_one(tmp_path: Path) -> None:
    assert read_history(tmp_path) == []


def test_weights_that_do_not_fit_are_counted_not_listed(tmp_path: Path) -> None:
    import torch

    from embedforge.files.run_folder import BEST, load_best, save_best_model

    save_best_model(tmp_path, "{}\n", torch.nn.Linear(3, 2))
    with pytest.raises(UserError) as caught:
        load_best(tmp_path, torch.nn.Linear(3, 4))
    assert str(caught.value) == (
        f"{tmp_path / BEST}: model weights do not fit recipe.yaml (2 of another shape (first "
        "'weight': [2, 3] in the file, [4, 3] in the model)); expected the weights of the model "
        "recipe.yaml describes (was it edited?)"
    )
    with pytest.raises(UserError, match=r"2 missing \(first '0.weight'\), 2 unexpected"):
        load_best(tmp_path, torch.nn.Sequential(torch.nn.Linear(3, 2)))
