"""Autograd functions whose forward pass already computed the gradient of their input.

The fused losses (triplet, contrastive) know the gradient of their mean with
respect to the (B, B) distance matrix in closed form, and build it while they
compute the loss. Saving that one tensor is all the backward pass needs, and
far less than autograd would keep through the elementwise graph.

The saved gradient is a constant to autograd, so its own dependence on the input (the
second-order term) is unknown: a ``create_graph=True`` pass raises instead of returning a
second derivative that silently lacks that term. (``once_differentiable`` is not enough: it
only guards when the incoming gradient itself requires grad, and the distance matrix's own
backward would still build a graph around the constant.)
"""

import torch
from torch import Tensor


class SavedGradientFunction(torch.autograd.Function):
    """Base: ``forward`` saves d(loss)/d(input 0); backward scales it by the incoming gradient."""

    @staticmethod
    def backward(ctx, grad_loss: Tensor, *_unused: Tensor):  # type: ignore[override]
        if torch.is_grad_enabled():  # autograd enables grad in backward only for create_graph
            raise RuntimeError(
                f"{ctx.__class__.__name__.removeprefix('_').removesuffix('Backward')}: this "
                "fused loss has no second derivative; create_graph=True (a gradient penalty, "
                "meta-learning) needs a loss written with plain autograd operations"
            )
        (grad,) = ctx.saved_tensors
        return (grad_loss * grad, *([None] * (len(ctx.needs_input_grad) - 1)))


def mean_and_gradient(total: Tensor, grad: Tensor, denominator: Tensor, sign: float) -> Tensor:
    """``total / denominator``, with ``grad`` (of the sum) scaled to match, in place.

    When nothing counted (denominator 0) the mean is 0, still on the graph, and
    the gradient is zero.
    """
    if denominator > 0:
        grad *= sign / denominator
        return total / denominator
    grad.zero_()
    return total * 0.0
