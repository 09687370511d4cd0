"""Distributed helpers: rank info, process-group setup, and gathers that keep gradients.

Why: contrastive and metric losses get better with more negatives per anchor;
SimCLR (Chen et al., 2020, arXiv:2002.05709) trains with global batches of
thousands spread over many devices, gathering every device's embeddings so
each anchor sees the negatives of the whole global batch. Gathering is kept
out of the losses (one helper, called before the loss): every loss stays a
plain function of one batch.

Gradient convention. :func:`gather_with_grad` returns the same global tensor
on every rank; each rank then computes the *same* global loss ``L``. In
backward, each rank's gradient for the gathered tensor is summed over ranks
(an all-reduce) and each rank keeps its own slice, so rank r receives
``world_size * dL/dz_r`` for its local embeddings ``z_r``. DDP then *averages*
parameter gradients over ranks, which divides that factor out again: the final
parameter gradient is exactly ``dL/dθ`` of a single process that saw the whole
global batch. No extra scaling of the loss is needed, and it holds for
unequal per-rank batch sizes too. (Without DDP, i.e. summing instead of
averaging, divide the loss by ``world_size``.)
"""

import os
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from embedforge.devices import DeviceChoice, resolve_device
from embedforge.errors import UserError
from embedforge.losses.precision import in_float32


def is_distributed() -> bool:
    """Whether a process group is initialised (and so collectives are live)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank; 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes; 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0, the one process that writes logs and checkpoints.

    >>> is_main_process()  # not distributed here
    True
    """
    return rank() == 0


def setup_from_env(backend: Literal["nccl", "gloo"]) -> bool:
    """Initialise the default process group from torchrun's environment, if it is there.

    torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT``; without ``RANK`` and ``WORLD_SIZE`` this does nothing and
    returns False. The caller names the backend, "nccl" for GPUs or "gloo" for the
    CPU, from the device it trains on (a GPU merely being present says nothing);
    "nccl" selects the ``LOCAL_RANK`` GPU and refuses (:class:`UserError`) a local
    rank the machine has no GPU for. Calling it again once initialised returns
    True. Returns whether distributed training is on.
    """
    if is_distributed():
        return True
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if not dist.is_available():
        raise RuntimeError("RANK/WORLD_SIZE are set but torch.distributed is not available")
    if backend == "nccl":
        local_rank, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        if local_rank >= gpus:
            raise UserError(
                f"torchrun started local process {local_rank} but this machine has {gpus} "
                f"GPU(s): start at most {gpus} per node (--nproc_per_node), or train on the "
                "CPU (--set train.device=cpu)"
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, init_method="env://")
    return True


def cleanup(*, finished: bool = False) -> None:
    """Destroy the default process group if one is initialised (safe to call always).

    ``finished``: every rank got here by finishing its work, so they first wait for each
    other; then no rank tears its group down, and with it the connections and the
    rendezvous store of a multi-node run, while another is still writing or exiting. Once
    (two torchrun agents on a loaded 2-core machine) rank 1 left while rank 0 was writing
    the run and was aborted at exit ("terminate called without an active exception"). After
    a failure there is no barrier: the other ranks may never come.
    """
    if is_distributed():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def _all_gather_rows(tensor: Tensor) -> tuple[Tensor, list[int]]:
    """All-gather along dim 0, allowing a different row count per rank; returns (rows, sizes)."""
    n = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.int64)
    counts = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(counts, n)
    sizes = [int(c) for c in counts]
    most = max(sizes)
    padded = tensor.new_zeros((most, *tensor.shape[1:]))  # (max n, ...): all_gather needs equal
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)]), sizes


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums each slice's gradient over ranks (see module docstring).

    First order only: the backward's all-reduce is not itself differentiated, so a second
    derivative through it (``create_graph=True``, e.g. a gradient penalty) would silently lack
    the other ranks' terms. ``once_differentiable`` makes that an error instead.
    """

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        gathered, sizes = _all_gather_rows(tensor.detach())
        start = sum(sizes[: rank()])
        ctx.local = (start, start + tensor.shape[0])
        return gathered

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()  # all_reduce is in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start, stop = ctx.local
        return grad[start:stop]


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate every rank's ``tensor`` along dim 0, keeping gradients to the local rows.

    (n_r, ...) on rank r -> (sum_r n_r, ...) on every rank, in rank order. The
    local rows stay on the autograd graph; backward sends each rank the sum of
    the gradients all ranks computed for its rows, so that, with DDP's
    gradient averaging, parameters get the single-process gradient of the
    global batch. Per-rank sizes may differ. Not distributed (or one
    process): returns ``tensor`` itself.

    >>> x = torch.ones(2, 3, requires_grad=True)
    >>> gather_with_grad(x) is x  # not distributed here
    True
    """
    if world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


def gather_labels(labels: Tensor) -> Tensor:
    """Concatenate every rank's ``labels`` along dim 0 (rank order, no gradient).

    >>> y = torch.tensor([0, 1])
    >>> gather_labels(y) is y  # not distributed here
    True
    """
    if world_size() == 1:
        return labels
    return _all_gather_rows(labels.detach())[0]


def broadcast_metrics(metrics: dict[str, float], device: torch.device) -> dict[str, float]:
    """Rank 0's ``metrics`` on every rank (``metrics`` itself when not distributed).

    Every rank validates, but its numbers need not match rank 0's to the last bit (batch-norm
    statistics stay per rank on the CPU, sums run in another order): the best epoch and the
    early stop must be decided once, or ranks would stop at different epochs and the one still
    training would meet another collective at its next all-reduce (gloo aborts, NCCL hangs).
    Every rank must pass the same names (the same task does); the values travel as one float64
    tensor on ``device`` (NCCL needs a GPU tensor), which holds a Python float exactly.

    >>> broadcast_metrics({"precision_at_1": 0.5}, torch.device("cpu"))  # not distributed here
    {'precision_at_1': 0.5}
    """
    if world_size() == 1 or not metrics:
        return metrics
    names = sorted(metrics)  # the same order on every rank, whatever order validate used
    values = torch.tensor([metrics[name] for name in names], dtype=torch.float64, device=device)
    dist.broadcast(values, src=0)
    from_main = dict(zip(names, values.tolist(), strict=True))
    return {name: from_main[name] for name in metrics}  # in the caller's order


def global_batch_loss(loss_fn: nn.Module, embeddings: Tensor, labels_or_view: Tensor) -> Tensor:
    """``loss_fn`` over the global batch: gathers embeddings (with gradients) and labels first.

    ``labels_or_view`` is an int (n,) label tensor (gathered without gradient)
    or, for the two-view NT-Xent form, a float (n, D) second view (gathered
    with gradient; item identities then span the global batch). Every rank
    returns the same global loss value, in float32 even under autocast
    (:mod:`~embedforge.losses.precision`), unscaled: the gather's backward
    already multiplies each rank's gradient by ``world_size``, which DDP's
    averaging divides out (module docstring).

    >>> from embedforge.losses.supcon import SupConLoss
    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> y = torch.tensor([0, 0, 1])
    >>> round(global_batch_loss(SupConLoss(temperature=1.0), x, y).item(), 4)  # one process
    0.3133
    """
    if labels_or_view.is_floating_point():
        other = gather_with_grad(labels_or_view)
    else:
        other = gather_labels(labels_or_view)
    return in_float32(loss_fn, gather_with_grad(embeddings), other)


def start_processes(choice: DeviceChoice, setting: str) -> torch.device:
    """The device to train on, after joining torchrun's process group if there is one.

    ``choice`` (auto/cpu/cuda) is resolved by :func:`embedforge.devices.resolve_device`
    (``setting`` names it in errors); the backend follows the device (NCCL on GPUs, gloo
    on the CPU), and each rank takes its local GPU.
    """
    cuda = resolve_device(choice, setting) == "cuda"
    setup_from_env("nccl" if cuda else "gloo")
    return torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel under torchrun (on GPUs with synchronous batch
    norm; torch's SyncBatchNorm refuses CPU tensors, so there it stays per rank); as it is
    on one process."""
    if not is_distributed():
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=True)


__all__ = [
    "broadcast_metrics",
    "cleanup",
    "gather_labels",
    "gather_with_grad",
    "global_batch_loss",
    "is_distributed",
    "is_main_process",
    "rank",
    "setup_from_env",
    "start_processes",
    "world_size",
    "wrap_model",
]
