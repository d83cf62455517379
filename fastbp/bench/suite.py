"""The public benchmark suite (DESIGN.md): float32 layers in NCHW / NCL, and GEMM shapes."""
from __future__ import annotations

from typing import NamedTuple


class ConvLayer(NamedTuple):
    name: str
    x: tuple[int, ...]       # (N, C, H, W) or (N, C, L)
    weight: tuple[int, ...]  # (C_out, C_in/groups, kH, kW) or (C_out, C_in/groups, kW)
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1


class LinearLayer(NamedTuple):
    name: str
    batch: int
    in_features: int
    out_features: int


CONV_SUITE = [
    ConvLayer("lenet-c1", (64, 1, 28, 28), (32, 1, 5, 5), 1, 2),
    ConvLayer("lenet-c2", (64, 32, 14, 14), (64, 32, 5, 5), 1, 2),
    ConvLayer("cifar-3x3", (32, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ConvLayer("r18-c2", (8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    ConvLayer("r18-down", (8, 64, 56, 56), (128, 64, 3, 3), 2, 1),
    ConvLayer("r18-c4", (8, 256, 14, 14), (256, 256, 3, 3), 1, 1),
    ConvLayer("pw-1x1", (8, 256, 14, 14), (1024, 256, 1, 1), 1, 0),
    ConvLayer("stem-7x7", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    ConvLayer("ppg-c1", (64, 4, 256), (32, 4, 9), 1, 4),
    ConvLayer("ppg-c2", (64, 32, 128), (64, 32, 9), 1, 4),
    # one layer of each class that im2col + GEMM alone serves badly
    ConvLayer("dw-3x3", (8, 128, 56, 56), (128, 1, 3, 3), 1, 1, groups=128),
    ConvLayer("grouped", (8, 256, 28, 28), (256, 8, 3, 3), 1, 1, groups=32),
    ConvLayer("s2-5x5", (32, 32, 32, 32), (64, 32, 5, 5), 2, 2),
    ConvLayer("dilated", (8, 64, 56, 56), (64, 64, 3, 3), 1, 2, dilation=2),
    ConvLayer("batch1", (1, 256, 14, 14), (256, 256, 3, 3), 1, 1),
    ConvLayer("c512-7x7", (8, 512, 7, 7), (512, 512, 3, 3), 1, 1),
    ConvLayer("long-1d", (8, 16, 8192), (32, 16, 9), 1, 4),
    ConvLayer("tiny", (1, 1, 8, 8), (1, 1, 3, 3), 1, 0),
]
LINEAR_SUITE = [
    LinearLayer("mlp", 64, 784, 256),
    LinearLayer("fc-4096", 256, 4096, 1024),
    LinearLayer("gemv", 1, 1024, 1024),
]
# name, M, N, K: C[M,N] = A[M,K] B[K,N], float32 -- squares and the layers' own GEMMs
GEMM_SUITE = [
    ("sq256", 256, 256, 256), ("sq1024", 1024, 1024, 1024), ("sq2048", 2048, 2048, 2048),
    ("conv-r18c2", 64, 3136, 576), ("conv-r18c4", 256, 196, 2304), ("conv-lenet2", 64, 196, 800),
    ("conv-dw-bwd", 256, 2304, 196), ("fc-bwd", 1024, 4096, 256), ("skinny", 32, 4096, 4096),
]
