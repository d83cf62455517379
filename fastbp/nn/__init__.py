"""Layers, Module and differentiable functions on fastbp Tensors, laid out like torch.nn."""
from . import functional, init, utils
from .init import manual_seed
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules

__all__ = ["functional", "init", "utils", "manual_seed"] + list(_modules)
