"""Autograd functions whose forward pass already computed the gradient of their input.

The fused losses (triplet, contrastive) know the gradient of their mean with
respect to the (B, B) distance matrix in closed form, and build it while they
compute the loss. Saving that one tensor is all the backward pass needs, and
far less than autograd would keep through the elementwise graph.
"""

import torch
from torch import Tensor


class SavedGradientFunction(torch.autograd.Function):
    """Base: ``forward`` saves d(loss)/d(input 0); backward scales it by the incoming gradient."""

    @staticmethod
    def backward(ctx, grad_loss: Tensor, *_unused: Tensor):  # type: ignore[override]
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
