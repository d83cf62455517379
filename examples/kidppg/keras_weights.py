"""The published Keras weights as a PyTorch-layout state_dict: every layout change in one place.

Keras stores   Conv1D kernel (k, in, out)             torch Conv1d weight (out, in, k)
               Dense kernel (in, out)                 Linear weight (out, in)
               MHA query/key/value kernel             in_proj_weight rows [q; k; v], each
                 (d_model, heads, head_dim), bias       (heads * head_dim, d_model), row h * head_dim + i
                 (heads, head_dim)                      = head h, unit i (torch's head split)
               MHA attention_output kernel            out_proj.weight (d_model, heads * head_dim)
                 (heads, head_dim, d_model)
               LayerNormalization gamma, beta         LayerNorm weight, bias
Both scale the query by 1 / sqrt(head_dim) and take softmax over the key axis, so nothing else
changes. Keras's Flatten of (16, 64) runs time-major, as torch's flatten(1) of (N, 16, 64) does.
"""
from __future__ import annotations

import numpy as np

from . import architecture as arch
from .material import WEIGHTS_MEMBER, MaterialError, read_keras_h5, read_member


def _by_class(layers, class_name, count):
    found = [layer for layer in layers if layer.class_name == class_name]
    if len(found) != count:
        raise MaterialError(f"expected {count} {class_name} layer(s) in the Keras file, found "
                            f"{[layer.name for layer in found]}")
    return found


def _weight(layer, suffix):
    """The one weight of `layer` whose name ends with `suffix` (e.g. 'query/kernel:0')."""
    hits = [array for name, array in layer.weights if name.endswith(suffix)]
    if len(hits) != 1:
        raise MaterialError(f"layer {layer.name}: no single weight named *{suffix} among "
                            f"{[name for name, _ in layer.weights]}")
    return hits[0]


def conv1d_weight(kernel):
    return np.ascontiguousarray(kernel.transpose(2, 1, 0))


def dense_weight(kernel):
    return np.ascontiguousarray(kernel.T)


def attention_projection(kernel, bias):
    """(d_model, heads, head_dim), (heads, head_dim) -> (heads * head_dim, d_model), (...,)."""
    d_model = kernel.shape[0]
    return kernel.reshape(d_model, -1).T, bias.reshape(-1)


def attention_output(kernel):
    """(heads, head_dim, d_model) -> (d_model, heads * head_dim)."""
    return np.ascontiguousarray(kernel.reshape(-1, kernel.shape[-1]).T)


def keras_to_state_dict(layers) -> dict:
    """`material.read_keras_h5` layers -> {torch key: float32 ndarray}, keys and shapes as
    `architecture.state_dict_shapes()`; any difference is a MaterialError naming the key."""
    state = {}
    for b, block in enumerate(_by_class(layers, "Functional", len(arch.FILTERS))):
        kernels = [a for n, a in block.weights if n.endswith("/kernel:0")]
        biases = [a for n, a in block.weights if n.endswith("/bias:0")]
        if len(kernels) != arch.CONVS_PER_BLOCK or len(biases) != arch.CONVS_PER_BLOCK:
            raise MaterialError(f"block {block.name}: expected {arch.CONVS_PER_BLOCK} Conv1D "
                                f"kernels and biases, got {[n for n, _ in block.weights]}")
        for c, (kernel, bias) in enumerate(zip(kernels, biases)):
            state[f"blocks.{b}.convs.{c}.weight"] = conv1d_weight(kernel)
            state[f"blocks.{b}.convs.{c}.bias"] = bias

    (mha,) = _by_class(layers, "MultiHeadAttention", 1)
    projections = [attention_projection(_weight(mha, f"{p}/kernel:0"), _weight(mha, f"{p}/bias:0"))
                   for p in ("query", "key", "value")]
    state["attention.in_proj_weight"] = np.concatenate([w for w, _ in projections])
    state["attention.in_proj_bias"] = np.concatenate([b for _, b in projections])
    state["attention.out_proj.weight"] = attention_output(_weight(mha, "attention_output/kernel:0"))
    state["attention.out_proj.bias"] = _weight(mha, "attention_output/bias:0")

    (norm,) = _by_class(layers, "LayerNormalization", 1)
    state["norm.weight"] = _weight(norm, "gamma:0")
    state["norm.bias"] = _weight(norm, "beta:0")

    for key, dense in zip(("hidden", "output"), _by_class(layers, "Dense", 2)):
        state[f"{key}.weight"] = dense_weight(_weight(dense, "kernel:0"))
        state[f"{key}.bias"] = _weight(dense, "bias:0")

    expected = arch.state_dict_shapes()
    for key, shape in expected.items():
        if key not in state or state[key].shape != shape:
            got = state[key].shape if key in state else "missing"
            raise MaterialError(f"converted weight {key} has shape {got}, expected {shape}")
    return {key: np.ascontiguousarray(state[key], dtype=np.float32) for key in expected}


def load_state_dict(wheel) -> dict:
    """The published KID-PPG weights from the wheel, as a torch-layout state_dict."""
    return keras_to_state_dict(read_keras_h5(read_member(wheel, WEIGHTS_MEMBER)))
