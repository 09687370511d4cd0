"""InfoNCE against a momentum encoder's keys: MoCo v2's queue form and MoCo v3's in-batch form.

MoCo (He et al., 2019, arXiv:1911.05722, Algorithm 1) and v2 (arXiv:2003.04297): each query
q's positive is the key k of the other view of its item, its negatives a FIFO queue of the
keys of past batches: ``CE([q·k, q·queue] / τ, 0)``, keys detached, rows L2-normalised.
lightly 1.6's ``NTXentLoss(memory_bank_size=...)`` computes the same with its bank as the
queue (only the bank as negatives), but its memory bank imports torchvision, so the tests
check this against a loop written from Algorithm 1 instead. MoCo v3 (Chen, Xie & He, 2021,
arXiv:2104.02057): no queue, the other keys of the batch are the negatives,
``2τ · CE(q kᵀ / τ, arange)``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def queue_infonce_loss(
    query: Tensor, key: Tensor, queue: Tensor, *, temperature: float = 0.2
) -> Tensor:
    """MoCo v2's loss: (B, D) queries and their (B, D) positive keys, (K, D) negatives (the
    queue's filled part; K may be 0). Keys and queue take no gradient.

    >>> q = torch.tensor([[1.0, 0.0]])
    >>> round(queue_infonce_loss(q, q, torch.tensor([[1.0, 0.0]])).item(), 4)  # log(1 + 1)
    0.6931
    """
    q = F.normalize(query, dim=1)
    k = F.normalize(key.detach(), dim=1)
    negatives = F.normalize(queue.detach(), dim=1)
    logits = torch.cat([(q * k).sum(dim=1, keepdim=True), q @ negatives.T], dim=1)  # (B, 1+K)
    targets = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits / temperature, targets)


def moco_v3_loss(query: Tensor, key: Tensor, *, temperature: float = 0.2) -> Tensor:
    """MoCo v3's loss for one direction: item i's key is query i's positive, the batch's
    other keys its negatives, scaled by 2τ as in the paper's pseudocode."""
    q = F.normalize(query, dim=1)
    k = F.normalize(key.detach(), dim=1)
    targets = torch.arange(len(q), device=q.device)
    return F.cross_entropy(q @ k.T / temperature, targets) * 2 * temperature


def enqueue(queue: Tensor, pointer: Tensor, keys: Tensor) -> tuple[Tensor, Tensor]:
    """The (K, D) ring ``queue`` with ``keys`` written from ``pointer`` on, wrapping around;
    more keys than K keep the newest. Returns the new queue and pointer (no in-place change).

    >>> queue, pointer = enqueue(torch.zeros(3, 1), torch.tensor(2), torch.tensor([[1.0], [2.0]]))
    >>> queue.flatten().tolist(), int(pointer)
    ([2.0, 0.0, 1.0], 1)
    """
    size = len(queue)
    if size == 0:
        return queue, pointer
    start = int(pointer) + max(0, len(keys) - size)
    keys = keys[-size:].detach()
    slots = (start + torch.arange(len(keys), device=queue.device)) % size
    updated = queue.clone()
    updated[slots] = keys
    return updated, pointer.new_tensor((start + len(keys)) % size)


__all__ = ["enqueue", "moco_v3_loss", "queue_infonce_loss"]
