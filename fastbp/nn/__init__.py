"""Layers, Module and differentiable functions on fastbp Tensors, laid out like torch.nn."""
from . import functional, init
from .init import manual_seed
from .modules import (Conv1d, Conv2d, Flatten, Linear, MaxPool1d, MaxPool2d, Module, Parameter,
                      ReLU, Sequential)

__all__ = ["functional", "init", "manual_seed", "Module", "Parameter", "Sequential", "Linear",
           "Conv1d", "Conv2d", "ReLU", "MaxPool1d", "MaxPool2d", "Flatten"]
