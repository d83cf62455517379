"""KID-PPG in PyTorch, built from examples/kidppg/architecture.py: the test peer that fastbp's
network and the Keras weight conversion are checked against. Tests only; never imported by fastbp."""
import torch
import torch.nn.functional as F
from torch import nn

from kidppg import architecture as arch


class ConvBlock(nn.Module):
    def __init__(self, c_in, c_out, pool):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in if i == 0 else c_out, c_out, arch.KERNEL_SIZE, dilation=arch.DILATION)
            for i in range(arch.CONVS_PER_BLOCK))
        self.pool = nn.AvgPool1d(pool)

    def forward(self, x):
        for conv in self.convs:
            x = F.relu(conv(F.pad(x, (arch.CAUSAL_PAD, 0))))  # Keras 'causal': pad on the left
        return self.pool(x)


class KIDPPG(nn.Module):
    def __init__(self):
        super().__init__()
        c_in = (1,) + arch.FILTERS[:-1]
        self.blocks = nn.ModuleList(ConvBlock(i, o, p) for i, o, p in zip(c_in, arch.FILTERS, arch.POOLS))
        self.attention = nn.MultiheadAttention(arch.EMBED_DIM, arch.NUM_HEADS, batch_first=True)
        self.norm = nn.LayerNorm(arch.EMBED_DIM, eps=arch.LAYER_NORM_EPS)
        self.hidden = nn.Linear(arch.STEPS * arch.EMBED_DIM, arch.HIDDEN)
        self.dropout = nn.Dropout(arch.HIDDEN_DROPOUT)
        self.output = nn.Linear(arch.HIDDEN, arch.OUTPUTS)

    def branch(self, x):
        """(N, 256) -> (N, 16, 64)."""
        x = x[:, None, :]
        for block in self.blocks:
            x = block(x)
        return x.transpose(1, 2)

    def forward(self, pairs):
        """pairs (N, 256, 2) -> (N, 2): mean, pre-softplus std."""
        previous, current = self.branch(pairs[..., 0]), self.branch(pairs[..., 1])
        attended, _ = self.attention(current, previous, previous, need_weights=False)
        h = self.norm(attended + current)
        h = self.dropout(F.relu(self.hidden(h.flatten(1))))
        return self.output(h)


def mean_std(out):
    return out[:, 0], 1 + F.softplus(out[:, 1])


def from_state_dict(state, dtype=torch.float32):
    model = KIDPPG().to(dtype)
    model.load_state_dict({k: torch.as_tensor(v, dtype=dtype) for k, v in state.items()})
    return model.eval()


@torch.no_grad()
def predict(model, pairs, batch_size=256):
    """(N, 256, 2) array -> mean (N,), std (N,) numpy arrays, eval mode."""
    dtype = next(model.parameters()).dtype
    means, stds = [], []
    for i in range(0, len(pairs), batch_size):
        m, s = mean_std(model(torch.as_tensor(pairs[i:i + batch_size], dtype=dtype)))
        means.append(m)
        stds.append(s)
    return torch.cat(means).numpy(), torch.cat(stds).numpy()
