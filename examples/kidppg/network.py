"""The KID-PPG network on fastbp.nn: the place for it once fastbp.nn has the layers it needs.

architecture.py describes it layer by layer in torch's terms, and keras_weights.py already gives
its published weights as the state_dict it will load; tests/kidppg_torch.py is the same network
in PyTorch, the peer that this one will be checked against (values and gradients).
"""
from __future__ import annotations

from fastbp import nn

NEEDED = ("MultiheadAttention", "LayerNorm", "AvgPool1d", "Dropout")


def missing_layers() -> list:
    """The fastbp.nn modules the network needs and this fastbp does not have yet."""
    return [name for name in NEEDED if not hasattr(nn, name)]


def build_network(state_dict=None):
    """KID-PPG as a fastbp.nn.Module in eval mode, loaded with `state_dict` when given."""
    missing = missing_layers()
    raise NotImplementedError(
        "the KID-PPG network is not built on fastbp yet"
        + (f": fastbp.nn lacks {', '.join(missing)}" if missing else ""))
