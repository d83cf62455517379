"""Module, Parameter and the layers, with PyTorch's parameter names, layouts and initialisation,
so state_dicts move between fastbp and PyTorch unchanged."""
from __future__ import annotations

import math
from collections import OrderedDict, namedtuple

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init

__all__ = ["Parameter", "Module", "Sequential", "Linear", "Conv1d", "Conv2d", "ReLU",
           "MaxPool1d", "MaxPool2d", "Flatten"]


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter; requires grad unless told otherwise.
    It holds its own copy of the data, so optimizer steps never write into the caller's array."""

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(np.array(data, dtype=dtype), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _as_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = np.dtype(str(dtype).replace("torch.", ""))  # e.g. torch.float64, without torch
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"parameters can be float32 or float64, not {dtype}")
    return dtype


class Module:
    """Base class: parameters and child modules assigned as attributes are registered in order."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- registration -------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        params, modules = self._parameters, self._modules
        if isinstance(value, Parameter):
            modules.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            self.__dict__.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} "
                                f"(use a Parameter or None)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to child module {name!r}")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        if "_parameters" in d and name in d["_parameters"]:
            return d["_parameters"][name]
        if "_modules" in d and name in d["_modules"]:
            return d["_modules"][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param):
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module):
        self._modules[name] = module

    # --- traversal ----------------------------------------------------------------------------
    def named_children(self):
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = ""):
        seen = set()

        def walk(module, prefix):
            if id(module) in seen:
                return
            seen.add(id(module))
            yield prefix, module
            for name, child in module.named_children():
                yield from walk(child, f"{prefix}.{name}" if prefix else name)

        yield from walk(self, prefix)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """(dotted name, Parameter) pairs as PyTorch names them, e.g. '0.weight'; shared ones once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_prefix}.{name}" if module_prefix else name), param

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    # --- state --------------------------------------------------------------------------------
    def _state_entries(self, prefix: str = ""):
        """(key, Parameter) for the state_dict: like torch, every path through _modules counts,
        so a shared submodule or parameter appears under each of its names."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        for name, module in self._modules.items():
            if module is not None:
                yield from module._state_entries(f"{prefix}{name}.")

    def state_dict(self) -> OrderedDict:
        """Copies of every parameter's array, keyed like PyTorch's state_dict."""
        return OrderedDict((key, param.data.copy()) for key, param in self._state_entries())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values (numpy arrays, fastbp Tensors, CPU torch tensors, anything np.asarray
        takes) into the parameters, cast to each parameter's dtype. Checks everything before
        writing anything: shape mismatches always raise; missing and unexpected keys raise
        when strict."""
        own = OrderedDict(self._state_entries())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        values = {}
        for key, param in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if isinstance(value, Tensor):
                value = value.data
            elif hasattr(value, "detach"):
                value = value.detach()  # e.g. a torch Parameter, which np.asarray refuses
            value = np.asarray(value)
            if value.shape != param.shape:
                problems.append(f"shape mismatch for {key!r}: checkpoint has {value.shape}, "
                                f"the model has {param.shape}")
            values[key] = value
        if problems:
            raise RuntimeError(f"error loading state_dict into {type(self).__name__}:\n  "
                               + "\n  ".join(problems))
        for key, value in values.items():
            own[key].data[...] = value  # in place, casting to the parameter's dtype
        return IncompatibleKeys(missing, unexpected)

    # --- modes, gradients, dtype --------------------------------------------------------------
    def train(self, mode: bool = True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad[...] = 0

    def to(self, dtype=None):
        """Cast every parameter (and its grad) to float32 or float64; returns self.
        Accepts numpy dtypes, their names, and 'cpu' (a no-op: there is only the CPU)."""
        if dtype is None or (isinstance(dtype, str) and dtype == "cpu"):
            return self
        dtype = _as_dtype(dtype)
        for param in self.parameters():
            param.data = param.data.astype(dtype, copy=False)
            if param.grad is not None:
                param.grad = param.grad.astype(dtype, copy=False)
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # --- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Children run in order; named '0', '1', ... (or by the keys of an OrderedDict)."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


def _pair(value, n, name):
    if isinstance(value, str):
        return value
    return F._tuple(value, n, name)


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=np.float32, rng=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        dtype = _as_dtype(dtype)
        self.weight = Parameter(np.empty((out_features, in_features), dtype))
        self.bias = Parameter(np.empty(out_features, dtype)) if bias else None
        _init_like_torch(self.weight, self.bias, in_features, rng)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def _init_like_torch(weight, bias, fan_in, rng):
    # torch: kaiming_uniform_(weight, a=sqrt(5)) and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    init.kaiming_uniform_(weight, a=math.sqrt(5), fan_in=fan_in, rng=rng)
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound, rng)


class _ConvNd(Module):
    nd = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        nd = self.nd
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = F._tuple(kernel_size, nd, "kernel_size")
        self.stride = F._tuple(stride, nd, "stride")
        self.dilation = F._tuple(dilation, nd, "dilation")
        self.padding = _pair(padding, nd, "padding")
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid' or ints, got {padding!r}")
            if self.padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        dtype = _as_dtype(dtype)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype))
        self.bias = Parameter(np.empty(out_channels, dtype)) if bias else None
        _init_like_torch(self.weight, self.bias, int(np.prod(shape[1:])), rng)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self.nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def _options(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


class Conv1d(_ConvNd):
    """Input (N, C_in, L); weight (C_out, C_in/groups, K)."""

    nd = 1

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, **self._options())


class Conv2d(_ConvNd):
    """Input (N, C_in, H, W); weight (C_out, C_in/groups, kH, kW)."""

    nd = 2

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, **self._options())


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class _MaxPoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}")


class MaxPool1d(_MaxPoolNd):
    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation)


class MaxPool2d(_MaxPoolNd):
    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
