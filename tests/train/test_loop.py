"""The loop stays readable: train() and the step each fit on one screen (under 40 lines of
code, docstring and signature aside), and the hooks' defaults do nothing."""

import ast
import inspect

import pytest

from embedforge.train import loop, trainer
from embedforge.train.hooks import TrainingHooks


@pytest.mark.parametrize("function", [trainer.train, loop.train_epoch, loop.run_epochs])
def test_the_loop_fits_on_one_screen(function) -> None:
    definition = ast.parse(inspect.getsource(function)).body[0]
    body = definition.body[1:] if ast.get_docstring(definition) else definition.body
    assert body[-1].end_lineno - body[0].lineno + 1 < 40


def test_default_hooks_do_nothing_and_hold_no_state() -> None:
    hooks = TrainingHooks()
    hooks.after_optimizer_step(), hooks.on_epoch_end(0)
    assert hooks.state_dict() == {}
    hooks.load_state_dict({})
    with pytest.raises(ValueError, match="holds no state"):
        hooks.load_state_dict({"target": 1})
