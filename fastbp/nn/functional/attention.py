"""Attention as a composition of ops that already have gradients: batched matmul on fastbp's
GEMM, softmax, dropout and masking."""
from __future__ import annotations

import math

import numpy as np

from ...tensor import Tensor
from .activation import softmax
from .dropout import dropout
from .linear import linear
from ._utils import array_of, flag_arg, int_arg, real_arg, tensor_arg

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _float_mask(mask, dtype, bool_means_keep: bool, op="attention", name="attn_mask"):
    """A mask as an additive float array: boolean masks give 0 / -inf (which entries a boolean
    mask marks as allowed differs: SDPA's True attends, MultiheadAttention's True is masked)."""
    if mask is None:
        return None
    m = tensor_arg(op, name, mask).data
    if m.dtype == bool:
        blocked = ~m if bool_means_keep else m
        return np.where(blocked, np.asarray(-np.inf, dtype), np.zeros((), dtype))
    if not np.issubdtype(m.dtype, np.floating):
        raise TypeError(f"{op}: {name} must be bool or floating-point, got {m.dtype}")
    return m.astype(dtype, copy=False) if isinstance(mask, np.ndarray) or not isinstance(mask, Tensor) else mask


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale=None) -> Tensor:
    """softmax(q k^T * scale + mask) v over the last two dims, as torch: query (..., L, E),
    key (..., S, E), value (..., S, Ev). A boolean attn_mask marks the pairs that may attend;
    a float one is added to the scores. dropout_p applies to the attention weights."""
    op = "scaled_dot_product_attention"
    query, key, value = (tensor_arg(op, n, t) for n, t in
                         (("query", query), ("key", key), ("value", value)))
    dropout_p, is_causal = real_arg(op, "dropout_p", dropout_p), flag_arg(op, "is_causal", is_causal)
    scale = None if scale is None else real_arg(op, "scale", scale)
    if not 0 <= dropout_p <= 1:
        raise ValueError(f"{op}: dropout_p must be between 0 and 1, got {dropout_p}")
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not np.issubdtype(t.dtype, np.floating):
            raise TypeError(f"{op}: {name} must be floating-point, got dtype {t.dtype}")
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError(f"scaled_dot_product_attention: query {query.shape}, key {key.shape} and "
                         f"value {value.shape} need at least 2 dims (..., L, E)")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {query.shape} and key {key.shape} "
                         f"must share the last dim, key and value {value.shape} the sequence dim")
    L, S = query.shape[-2], key.shape[-2]
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal")
        attn_mask = np.tril(np.ones((L, S), bool))
    mask = _float_mask(attn_mask, scores.dtype, bool_means_keep=True, op=op)
    if mask is not None:
        shape = array_of(mask).shape
        try:
            fits = np.broadcast_shapes(shape, scores.shape) == scores.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: attn_mask of shape {shape} does not broadcast to the "
                             f"attention scores of shape {scores.shape} (..., L, S)")
        scores = scores + mask
    # a query that may attend to nothing (its scores all -inf) gets zero weights, not NaN, as
    # torch's SDPA does; its scores are replaced first so that no NaN reaches the gradient
    dead = np.all(scores.data == -np.inf, axis=-1, keepdims=True)
    if not dead.any():
        dead = None
    if dead is not None:
        scores = scores.masked_fill(dead, 0.0)
    weights = softmax(scores, dim=-1)
    if dead is not None:
        weights = weights.masked_fill(dead, 0.0)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p)
    return weights @ value


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """torch.nn.functional.multi_head_attention_forward: query (L, N, E) or unbatched (L, E),
    key/value (S, N, kdim/vdim). Returns (output (L, N, E), weights (N, L, S) averaged over
    heads, or (N, heads, L, S), or None when need_weights is False)."""
    if bias_k is not None or bias_v is not None or add_zero_attn or static_k is not None \
            or static_v is not None:
        raise ValueError("multi_head_attention_forward: bias_k/bias_v, add_zero_attn and "
                         "static_k/static_v are not supported")
    op = "multi_head_attention_forward"
    query, key, value = (tensor_arg(op, n, t) for n, t in
                         (("query", query), ("key", key), ("value", value)))
    embed_dim_to_check = int_arg(op, "embed_dim_to_check", embed_dim_to_check)
    num_heads = int_arg(op, "num_heads", num_heads, minimum=1)
    dropout_p = real_arg(op, "dropout_p", dropout_p)
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = np.asarray(array_of(key_padding_mask))[None]
    if query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
        raise ValueError(f"multi_head_attention_forward: query {query.shape}, key {key.shape} and "
                         f"value {value.shape} must all be 3-d (L, N, E) or all 2-d (L, E)")
    L, N, E = query.shape
    S = key.shape[0]
    if E != embed_dim_to_check:
        raise ValueError(f"{op}: was expecting embedding dimension of {embed_dim_to_check} "
                         f"(embed_dim_to_check), but got {E}")
    if E % num_heads:
        raise ValueError(f"{op}: embed_dim {E} not divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2] or key.shape[1] != N:
        raise ValueError(f"key shape {key.shape} and value shape {value.shape} must match query "
                         f"{query.shape} in batch, and each other in sequence length")
    hd = E // num_heads
    b_q = b_k = b_v = None
    if in_proj_bias is not None:
        b_q, b_k, b_v = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
    if use_separate_proj_weight:
        w_q, w_k, w_v = q_proj_weight, k_proj_weight, v_proj_weight
    else:
        w_q, w_k, w_v = in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:]
    q, k, v = linear(query, w_q, b_q), linear(key, w_k, b_k), linear(value, w_v, b_v)

    # one additive mask of shape (N * heads or 1, L, S)
    mask = _float_mask(attn_mask, q.dtype, bool_means_keep=False)
    if mask is not None:
        shape = mask.shape
        if shape not in ((L, S), (N * num_heads, L, S)):
            raise ValueError(f"attn_mask of shape {tuple(shape)} should be ({L}, {S}) or "
                             f"({N * num_heads}, {L}, {S})")
        mask = mask.reshape((-1, L, S))
    if is_causal and mask is None:
        mask = _float_mask(np.triu(np.ones((L, S), bool), 1), q.dtype, bool_means_keep=False)[None]
    if key_padding_mask is not None:
        kpm = _float_mask(key_padding_mask, q.dtype, bool_means_keep=False)
        kpm = array_of(kpm)
        if kpm.shape != (N, S):
            raise ValueError(f"key_padding_mask should have shape ({N}, {S}), got {kpm.shape}")
        kpm = np.broadcast_to(kpm[:, None, None, :], (N, num_heads, 1, S)).reshape(N * num_heads, 1, S)
        mask = kpm if mask is None else mask + kpm

    # heads: (L, N, E) -> (N * heads, L, hd)
    q = q.reshape(L, N * num_heads, hd).transpose(0, 1)
    k = k.reshape(S, N * num_heads, hd).transpose(0, 1)
    v = v.reshape(S, N * num_heads, hd).transpose(0, 1)
    scores = (q * (1 / math.sqrt(hd))) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores + mask
    weights = softmax(scores, dim=-1)
    if dropout_p > 0 and training:
        weights = dropout(weights, dropout_p)
    out = (weights @ v).transpose(0, 1).reshape(L * N, E)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(L, N, E)
    if unbatched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    weights = weights.reshape(N, num_heads, L, S)
    if average_attn_weights:
        weights = weights.mean(dim=1)
    if unbatched:
        weights = weights.squeeze(0)
    return out, weights
