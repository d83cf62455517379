"""The KID-PPG network, as the published Keras model builds it, in PyTorch's terms.

Input (N, 256, 2), KID-PPG's own layout: [..., 0] is the filtered PPG window n, [..., 1] window
n + 1 (8 s at 32 Hz each). Each of the two goes, as (N, 1, 256), through the same three
convolution blocks (one set of weights for both):

    block b (b = 0, 1, 2; channels 1 -> 32 -> 48 -> 64; pool 4, 2, 2):
        3 x [ F.pad(x, (8, 0)) -> Conv1d(c, FILTERS[b], 5, dilation=2) -> ReLU ]
        -> AvgPool1d(POOLS[b])
    (Keras also has Dropout(0.5) here but calls it with training=False: it never drops, so it
    is left out.)  Lengths: 256 -> 64 -> 32 -> 16; each branch ends as (N, 64, 16).

Both branches are transposed to (N, 16, 64) and meet in attention:

    a = MultiheadAttention(64, 4, batch_first=True)(query=branch n+1, key=value=branch n)
    h = LayerNorm(64, eps=1e-3)(a + branch n+1)          # residual of the query branch
    h = Linear(1024, 256)(h.flatten(1)) -> ReLU -> Dropout(0.125) -> Linear(256, 2)
    mean = out[:, 0];  std = 1 + F.softplus(out[:, 1])

Training loss: Gaussian negative log-likelihood of the ECG heart rate under N(mean, std), i.e.
F.gaussian_nll_loss(mean, y, std ** 2, full=True); the authors trained with Adam, lr 5e-4.
"""
from __future__ import annotations

WINDOW = 256             # samples per window (8 s at 32 Hz)
FILTERS = (32, 48, 64)   # output channels of the three convolution blocks
POOLS = (4, 2, 2)        # AvgPool1d kernel (= stride) after each block
CONVS_PER_BLOCK = 3
KERNEL_SIZE = 5
DILATION = 2
CAUSAL_PAD = (KERNEL_SIZE - 1) * DILATION   # left padding of Keras 'causal': 8
BLOCK_DROPOUT = 0.5      # never active (Keras calls it with training=False)
EMBED_DIM = FILTERS[-1]  # 64
NUM_HEADS = 4
HEAD_DIM = 16            # Keras key_dim (= value_dim); NUM_HEADS * HEAD_DIM == EMBED_DIM
LAYER_NORM_EPS = 1e-3    # Keras LayerNormalization's default (torch's is 1e-5)
STEPS = WINDOW // (POOLS[0] * POOLS[1] * POOLS[2])   # 16 time steps after the blocks
HIDDEN = 256
HIDDEN_DROPOUT = 0.125
OUTPUTS = 2              # mean and the pre-softplus std
ADAM_LR = 5e-4           # the authors' training: Adam on the Gaussian NLL


def state_dict_shapes() -> dict:
    """Every key of the network's state_dict (torch module structure) and its shape:
    blocks.{b}.convs.{c}.*, attention.* (nn.MultiheadAttention), norm.*, hidden.*, output.*."""
    shapes: dict[str, tuple[int, ...]] = {}
    c_in = 1
    for b, c_out in enumerate(FILTERS):
        for c in range(CONVS_PER_BLOCK):
            shapes[f"blocks.{b}.convs.{c}.weight"] = (c_out, c_in, KERNEL_SIZE)
            shapes[f"blocks.{b}.convs.{c}.bias"] = (c_out,)
            c_in = c_out
    shapes["attention.in_proj_weight"] = (3 * EMBED_DIM, EMBED_DIM)
    shapes["attention.in_proj_bias"] = (3 * EMBED_DIM,)
    shapes["attention.out_proj.weight"] = (EMBED_DIM, EMBED_DIM)
    shapes["attention.out_proj.bias"] = (EMBED_DIM,)
    shapes["norm.weight"] = (EMBED_DIM,)
    shapes["norm.bias"] = (EMBED_DIM,)
    shapes["hidden.weight"] = (HIDDEN, STEPS * EMBED_DIM)
    shapes["hidden.bias"] = (HIDDEN,)
    shapes["output.weight"] = (OUTPUTS, HIDDEN)
    shapes["output.bias"] = (OUTPUTS,)
    return shapes


PARAMETER_COUNT = 377_554  # what Keras reports for the published model
