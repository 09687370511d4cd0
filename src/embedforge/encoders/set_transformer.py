"""Set Transformer: self-attention between rows, then attention pooling into one vector.

Lee et al., "Set Transformer", 2019, arXiv:1810.00825 (SAB blocks + PMA
pooling). Self-attention lets each colour be read in the context of the others
(contrast, harmony), which a per-row MLP cannot. Attention is permutation
equivariant and the pooling is invariant, so the whole encoder is exactly
permutation invariant up to float rounding.

Two additions: the pooling adds log(row weight) to its attention logits, so
with equal scores it is the weighted mean (weights matter, as in a palette);
and every set gets one learned "null" row that is always present, so that
empty sets (and sets whose rows the attention would rather ignore) stay
well-defined instead of producing NaN from a softmax over nothing.
"""

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from embedforge.config import Section, Shapes
from embedforge.registry import SET_ENCODERS


class _MultiheadAttentionBlock(nn.Module):
    """MAB(X, Y) = LN(H + FF(H)), H = LN(X + Attention(X, Y, Y)).

    The attention's parameters are those of :class:`torch.nn.MultiheadAttention` (so
    checkpoints keep their names), but it is computed directly with
    :func:`~torch.nn.functional.scaled_dot_product_attention`: the key mask broadcasts over
    heads and queries instead of being repeated per head, and self-attention projects
    queries, keys and values in one matrix product. nn.MultiheadAttention's own path spent
    about a quarter of a Set Transformer step copying and filling tensors.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
        )

    def forward(
        self, queries: Tensor, keys: Tensor, *, key_mask: Tensor, logit_bias: Tensor | None = None
    ) -> Tensor:
        bias = torch.zeros_like(key_mask, dtype=keys.dtype) if logit_bias is None else logit_bias
        bias = bias.masked_fill(~key_mask, float("-inf"))  # (B, S)
        hidden = self.norm1(queries + self._attend(queries, keys, bias[:, None, None, :]))
        return self.norm2(hidden + self.feed_forward(hidden))

    def _attend(self, queries: Tensor, keys: Tensor, bias: Tensor) -> Tensor:
        """Multi-head attention of (B, L, D) queries over (B, S, D) keys; bias (B, 1, 1, S)."""
        attention = self.attention
        heads = attention.num_heads
        if queries is keys:  # self-attention: one projection for queries, keys and values
            qkv = F.linear(queries, attention.in_proj_weight, attention.in_proj_bias)
            q, k, v = qkv.unflatten(-1, (3, heads, -1)).permute(2, 0, 3, 1, 4)  # (B, h, L, d)
        else:
            weights = attention.in_proj_weight.chunk(3)
            biases = attention.in_proj_bias.chunk(3)
            q = F.linear(queries, weights[0], biases[0]).unflatten(-1, (heads, -1)).transpose(1, 2)
            kv = F.linear(keys, torch.cat(weights[1:]), torch.cat(biases[1:]))
            k, v = kv.unflatten(-1, (2, heads, -1)).permute(2, 0, 3, 1, 4)  # (B, h, S, d)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, h, L, d)
        return attention.out_proj(attended.transpose(1, 2).flatten(2))  # (B, L, D)


class SetTransformer(nn.Module):
    """(values (B, M, F), mask (B, M)) -> (B, dim); column ``weight_index`` holds row weights.

    >>> encoder = SetTransformer(in_features=4, dim=16)
    >>> values, mask = torch.rand(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    >>> encoder(values, mask).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        *,
        in_features: int,
        dim: int,
        hidden: int = 64,
        heads: int = 4,
        blocks: int = 2,
        weight_index: int = 0,
    ) -> None:
        super().__init__()
        self.embed_rows = nn.Linear(in_features, hidden)
        self.null_row = nn.Parameter(torch.zeros(1, 1, hidden))
        self.null_log_weight = nn.Parameter(torch.tensor(-4.0))
        self.self_attention = nn.ModuleList(
            _MultiheadAttentionBlock(hidden, heads) for _ in range(blocks)
        )
        self.seed = nn.Parameter(torch.randn(1, 1, hidden) * hidden**-0.5)
        self.pool = _MultiheadAttentionBlock(hidden, heads)
        self.output = nn.Linear(hidden, dim)
        self.weight_index = weight_index
        self.dim = dim

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:
        batch = values.shape[0]
        rows = self.embed_rows(values)  # (B, M, H)
        rows = torch.cat([self.null_row.expand(batch, -1, -1), rows], dim=1)  # (B, 1+M, H)
        mask = torch.cat([mask.new_ones(batch, 1), mask], dim=1)  # (B, 1+M)
        for block in self.self_attention:
            rows = block(rows, rows, key_mask=mask)
        weights = values[..., self.weight_index].clamp_min(1e-12)  # (B, M)
        log_weights = torch.cat(
            [self.null_log_weight.expand(batch, 1), weights.log()], dim=1
        )  # (B, 1+M)
        pooled = self.pool(
            self.seed.expand(batch, -1, -1), rows, key_mask=mask, logit_bias=log_weights
        )  # (B, 1, H)
        return self.output(pooled.squeeze(1))


class SetTransformerConfig(Section):
    """Set Transformer: attention between a set's rows, pooled by attention (invariant)."""

    name: Literal["set_transformer"] = "set_transformer"
    dim: int = Field(64, gt=0, description="the embedding size")
    hidden: int = Field(64, gt=0)
    heads: int = Field(4, gt=0)
    blocks: int = Field(2, ge=0)


@SET_ENCODERS.register(SetTransformerConfig)
def build(config: SetTransformerConfig, shapes: Shapes) -> SetTransformer:
    options = config.model_dump(exclude={"name"})
    return SetTransformer(in_features=shapes.in_features, **options)
