"""Differentiable functions on Tensors, laid out like torch.nn.functional: one module per
family (conv, linear, pooling, activation, normalization, dropout, attention, loss, shape), each
op a Function with forward and backward side by side. Import from here."""
from .activation import (elu, gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, softplus,
                         tanh)
from .attention import multi_head_attention_forward, scaled_dot_product_attention
from .conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from .dropout import dropout
from .linear import linear
from .loss import (binary_cross_entropy_with_logits, cross_entropy, gaussian_nll_loss, l1_loss,
                   mse_loss, nll_loss, smooth_l1_loss)
from .normalization import batch_norm, layer_norm
from .pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d,
                      max_pool1d, max_pool2d)
from .shape import flatten, pad
from ._utils import ntuple as _tuple  # noqa: F401  (used by the modules)

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "linear",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "relu", "sigmoid", "tanh", "gelu", "leaky_relu", "elu", "softplus", "softmax", "log_softmax",
    "batch_norm", "layer_norm", "dropout", "scaled_dot_product_attention",
    "multi_head_attention_forward",
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
    "binary_cross_entropy_with_logits", "gaussian_nll_loss",
    "flatten", "pad",
]
