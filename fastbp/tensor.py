"""A thin autograd Tensor over numpy arrays.

Every differentiable op is a small `Function` subclass with `forward` and `backward` on plain
ndarrays; the instance doubles as the context that keeps what backward needs. `Tensor.backward`
walks the graph in reverse topological order and hands each op the gradient of its output.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import re
import threading
import types

import numpy as np

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "cat", "stack", "where"]

class _GradState(threading.local):
    enabled = True  # per thread, as in PyTorch: no_grad in one thread leaves others recording


_grad_state = _GradState()


def is_grad_enabled() -> bool:
    return _grad_state.enabled


class _GradMode:
    """Context manager (and decorator) that sets whether ops record the graph."""

    _mode = True

    def __enter__(self):
        self._prev = _grad_state.enabled
        _grad_state.enabled = self._mode
        return self

    def __exit__(self, *exc):
        _grad_state.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """`with no_grad():` ops inside build no graph and their results don't require grad."""

    _mode = False


class enable_grad(_GradMode):
    _mode = True


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched to reach `shape`."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class Function:
    """One op. Subclasses define forward(*arrays, **options) -> array and
    backward(grad) -> one gradient (or None) per tensor input. What forward keeps on self for
    backward is freed once backward has run, unless backward(retain_graph=True)."""

    _graph_attrs = frozenset(("inputs", "needs_grad"))

    def __init__(self, inputs):
        self.inputs = inputs
        # all False under no_grad: forward need not keep anything for a backward that won't run
        enabled = _grad_state.enabled
        self.needs_grad = tuple(enabled and t.requires_grad for t in inputs)

    @classmethod
    def _tensor_args(cls, inputs) -> tuple:
        """Each input as a Tensor, or a TypeError naming the op and the argument, as torch's
        "relu(): argument 'input' (position 1) must be Tensor"."""
        out = []
        for i, x in enumerate(inputs):
            try:
                out.append(as_tensor(x))
            except TypeError as error:
                # the op's name from its class: _MatMul -> mat_mul
                op = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__.strip("_")).lower()
                names = [p for p in inspect.signature(cls.forward).parameters
                         if p != "self"][:len(inputs)]
                name = "input" if i >= len(names) or names[i] == "x" else names[i]
                raise TypeError(f"{op}(): argument '{name}' (position {i + 1}) must be a Tensor "
                                f"or an array of numbers, got {type(x).__name__} ({error})") from None
        return tuple(out)

    @classmethod
    def apply(cls, *inputs, **options) -> "Tensor":
        inputs = cls._tensor_args(inputs)
        ctx = cls(inputs)
        with np.errstate(all="ignore"):  # NaN and inf propagate silently, as in torch
            out = ctx.forward(*(t.data for t in inputs), **options)
        record = any(ctx.needs_grad)
        result = Tensor(out, requires_grad=record)
        if record:
            result._ctx = ctx
        return result

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def _run_backward(self, grad, retain_graph: bool):
        if self.__dict__.get("_freed"):
            raise RuntimeError(
                f"Trying to backward through the graph a second time: the arrays "
                f"{type(self).__name__} saved for backward were freed after the first backward. "
                f"Specify retain_graph=True on the first backward() to keep them.")
        with np.errstate(all="ignore"):
            grads = self.backward(grad)
        if not retain_graph:
            saved = [k for k, v in self.__dict__.items()
                     if k not in self._graph_attrs and isinstance(v, np.ndarray)]
            for k in saved:
                del self.__dict__[k]
            if saved:  # as torch: only a graph that saved arrays refuses a second backward
                self._freed = True
        return grads if isinstance(grads, tuple) else (grads,)


class RemovableHandle:
    """Returned by register_*hook; remove() unregisters the hook."""

    def __init__(self, hooks: dict, key: int):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


def _to_array(data, dtype=None) -> np.ndarray:
    """The array of a Tensor's data: numbers only (bool, integer, floating point), as torch
    refuses None, strings and objects; TypeError otherwise."""
    if isinstance(data, Tensor):
        data = data.data
    try:
        arr = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as error:  # ragged lists, unconvertible objects
        raise TypeError(f"Tensor data must be an array of numbers, got {type(data).__name__}: "
                        f"{error}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Tensor data must be an array of numbers (bool, integer or floating "
                        f"point), got {type(data).__name__} of dtype {arr.dtype}")
    if dtype is None and arr.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)  # python floats default to float32, as in torch
    return arr


def _category(dtype) -> int:
    """0 bool, 1 integer, 2 floating: torch promotes across categories, not within numpy's table."""
    kind = np.dtype(dtype).kind
    return 0 if kind == "b" else 2 if kind in "fc" else 1


def _promote_types(a, b) -> np.dtype:
    """torch.promote_types: the higher category's dtype wins (int64 + float32 -> float32);
    within a category numpy's table agrees with torch's."""
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return np.dtype(a if ca > cb else b)
    return np.promote_types(a, b)


def _result_type(a: np.ndarray, b: np.ndarray) -> np.dtype:
    """torch's rule for two operands: a 0-d one (python scalars arrive here as 0-d arrays) only
    changes the dtype of a dimensioned one when it is of a higher category."""
    if (a.ndim == 0) != (b.ndim == 0):
        dim, zero = (b, a) if a.ndim == 0 else (a, b)
        if _category(zero.dtype) <= _category(dim.dtype):
            return dim.dtype
    return _promote_types(a.dtype, b.dtype)


def _promote(a: np.ndarray, b: np.ndarray, floating: bool = False):
    """Both operands cast to their torch result dtype; float32 if `floating` and that is not."""
    dtype = _result_type(a, b)
    if floating and _category(dtype) < 2:
        dtype = np.dtype(np.float32)
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def _scalar_dtype(x, like) -> np.dtype:
    """The dtype a python (or numpy) scalar takes next to a tensor of dtype `like`: that one when
    the scalar's category is not higher, else torch's default for it (float32, int64)."""
    category = 0 if isinstance(x, (bool, np.bool_)) else 2 if isinstance(x, (float, np.floating)) else 1
    if category <= _category(like):
        return np.dtype(like)
    return np.dtype(np.float32 if category == 2 else np.int64)


def as_tensor(x, like: "Tensor | None" = None) -> "Tensor":
    """Tensor as is; python scalars take `like`'s dtype unless of a higher category (int tensor
    + 0.5 is float32), so float32 stays float32 as in torch."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (bool, int, float, np.number, np.bool_)):
        return Tensor(np.asarray(x, dtype=_scalar_dtype(x, like.dtype)))
    return Tensor(x)


_NO_HOOKS: types.MappingProxyType = types.MappingProxyType({})
_hook_ids = itertools.count()


class Tensor:
    """An ndarray plus the op that produced it. Leaf tensors that require grad collect .grad."""

    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__
    _hooks = _post_hooks = _NO_HOOKS  # per-instance dicts once a hook is registered

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self._ctx: Function | None = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    # --- properties ---------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if value and not np.issubdtype(self.data.dtype, np.floating):
            raise RuntimeError(
                f"only floating-point tensors can require gradients (this one is {self.data.dtype})")
        if not value and self._ctx is not None:
            raise RuntimeError("requires_grad can only be switched off on leaf tensors; use detach()")
        self._requires_grad = bool(value)

    def requires_grad_(self, value: bool = True) -> "Tensor":
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        return Tensor(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{type(self._ctx).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # --- autograd -----------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool | None = None) -> None:
        """Accumulate d(self)/d(leaf) * grad into every leaf's .grad that requires grad.
        The graph's saved arrays are freed on the way unless retain_graph=True."""
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require grad "
                               "(no input of the ops that made it requires grad)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a grad argument only works for a single-element output; "
                    f"this tensor has shape {self.shape}, so pass grad of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise RuntimeError(f"backward(): grad has shape {grad.shape}, expected {self.shape}")

        grads = {id(self): grad}
        for node in reversed(self._topological_order()):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            g = node._call_hooks(g)
            if node._ctx is None:
                if node.grad is None:
                    node.grad = np.array(g, dtype=node.dtype)  # own copy, so += below is safe
                else:
                    node.grad += g
                for hook in list(node._post_hooks.values()):
                    hook(node)
                continue
            ctx = node._ctx
            input_grads = ctx._run_backward(g, bool(retain_graph))
            for t, gt in zip(ctx.inputs, input_grads):
                if gt is None or not t.requires_grad:
                    continue
                gt = np.asarray(gt)
                if gt.dtype != t.dtype:
                    gt = gt.astype(t.dtype)
                if id(t) in grads:
                    grads[id(t)] = grads[id(t)] + gt
                else:
                    grads[id(t)] = gt

    def _call_hooks(self, g):
        for hook in list(self._hooks.values()):
            result = hook(Tensor(g))
            if result is not None:
                result = np.asarray(result.data if isinstance(result, Tensor) else result)
                if result.shape != g.shape:
                    raise RuntimeError(f"a gradient hook returned shape {result.shape}, "
                                       f"expected {g.shape}")
                g = result.astype(g.dtype, copy=False)
        return g

    def register_hook(self, hook) -> RemovableHandle:
        """hook(grad) runs when the gradient of this tensor is computed; a Tensor or array it
        returns replaces that gradient (for a leaf: before it is added to .grad)."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return self._add_hook("_hooks", hook)

    def register_post_accumulate_grad_hook(self, hook) -> RemovableHandle:
        """hook(tensor) runs after this leaf's .grad has been accumulated in a backward pass."""
        if not self.is_leaf:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return self._add_hook("_post_hooks", hook)

    def _add_hook(self, attr: str, hook) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        if attr not in self.__dict__:
            setattr(self, attr, {})
        hooks = getattr(self, attr)
        key = next(_hook_ids)
        hooks[key] = hook
        return RemovableHandle(hooks, key)


    def _topological_order(self) -> list:
        """Tensors that require grad, each after all of its inputs (iterative DFS)."""
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            if node._ctx is not None:
                for t in node._ctx.inputs:
                    if t.requires_grad and id(t) not in visited:
                        stack.append((t, False))
        return order

    # --- arithmetic and comparison ------------------------------------------------------------
    def __add__(self, other):
        return _ops.Add.apply(self, as_tensor(other, self))

    def __radd__(self, other):
        return _ops.Add.apply(as_tensor(other, self), self)

    def __sub__(self, other):
        return _ops.Sub.apply(self, as_tensor(other, self))

    def __rsub__(self, other):
        return _ops.Sub.apply(as_tensor(other, self), self)

    def __mul__(self, other):
        return _ops.Mul.apply(self, as_tensor(other, self))

    def __rmul__(self, other):
        return _ops.Mul.apply(as_tensor(other, self), self)

    def __truediv__(self, other):
        return _ops.Div.apply(self, as_tensor(other, self))

    def __rtruediv__(self, other):
        return _ops.Div.apply(as_tensor(other, self), self)

    def __neg__(self):
        return _ops.Neg.apply(self)

    def __pow__(self, exponent):
        return self.pow(exponent)

    def __rpow__(self, base):
        return _ops.PowTensor.apply(as_tensor(base, self), self)

    def __matmul__(self, other):
        return _ops.MatMul.apply(self, as_tensor(other))

    def __rmatmul__(self, other):
        return _ops.MatMul.apply(as_tensor(other), self)

    def __lt__(self, other):
        return Tensor(self.data < _data(other))

    def __le__(self, other):
        return Tensor(self.data <= _data(other))

    def __gt__(self, other):
        return Tensor(self.data > _data(other))

    def __ge__(self, other):
        return Tensor(self.data >= _data(other))

    def __invert__(self):
        return Tensor(~self.data)

    def __and__(self, other):
        return Tensor(self.data & _data(other))

    def __or__(self, other):
        return Tensor(self.data | _data(other))

    def eq(self, other):
        return Tensor(self.data == _data(other))

    def ne(self, other):
        return Tensor(self.data != _data(other))

    # --- elementwise --------------------------------------------------------------------------
    def pow(self, exponent):
        if isinstance(exponent, Tensor) or (isinstance(exponent, np.ndarray) and exponent.ndim):
            return _ops.PowTensor.apply(self, as_tensor(exponent, self))
        if isinstance(exponent, np.ndarray):
            exponent = exponent[()]  # a 0-d array as its numpy scalar
        if not isinstance(exponent, (bool, int, float, np.number, np.bool_)):
            raise TypeError(f"pow: exponent must be a number or a Tensor, got {type(exponent).__name__}")
        return _ops.Pow.apply(self, exponent=exponent)

    def exp(self):
        return _ops.Exp.apply(self)

    def log(self):
        return _ops.Log.apply(self)

    def sqrt(self):
        return _ops.Sqrt.apply(self)

    def abs(self):
        return _ops.Abs.apply(self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return _ops.Clamp.apply(self, low=min, high=max)

    clip = clamp

    def masked_fill(self, mask, value):
        return _ops.MaskedFill.apply(self, mask=np.asarray(_data(mask), dtype=bool), value=value)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def to(self, dtype):
        """A cast to dtype (float32/float64/...); gradients flow back in this tensor's dtype."""
        if isinstance(dtype, str) and dtype == "cpu":
            return self
        dtype = np.dtype(str(dtype).replace("torch.", "")) if not isinstance(dtype, np.dtype) else dtype
        return self if dtype == self.dtype else _ops.Cast.apply(self, dtype=np.dtype(dtype))

    def relu(self):
        from .nn import functional as F
        return F.relu(self)

    def sigmoid(self):
        from .nn import functional as F
        return F.sigmoid(self)

    def tanh(self):
        from .nn import functional as F
        return F.tanh(self)

    def softmax(self, dim):
        from .nn import functional as F
        return F.softmax(self, dim)

    def log_softmax(self, dim):
        from .nn import functional as F
        return F.log_softmax(self, dim)

    # --- reductions ---------------------------------------------------------------------------
    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        dims = _ops.reduce_dims(self.ndim, dim if axis is None else axis)
        return _ops.Sum.apply(self, dims=dims, keepdim=bool(keepdim if keepdims is None else keepdims))

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        dims = _ops.reduce_dims(self.ndim, dim if axis is None else axis)
        return _ops.Mean.apply(self, dims=dims, keepdim=bool(keepdim if keepdims is None else keepdims))

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
        """Variance over dim with torch's correction (1 = unbiased, the default)."""
        correction = (1 if unbiased else 0) if correction is None else correction
        dims = _ops.reduce_dims(self.ndim, dim)
        count = int(np.prod([self.shape[d] for d in dims]))
        diff = self - self.mean(dims, keepdim=True)
        return (diff * diff).sum(dims, keepdim=keepdim) / max(count - correction, 0)

    def std(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def max(self, dim=None, keepdim: bool = False):
        """No dim: the largest element. With dim: (values, indices) along it, as torch."""
        return _ops.extreme(self, dim, keepdim, largest=True)

    def min(self, dim=None, keepdim: bool = False):
        return _ops.extreme(self, dim, keepdim, largest=False)

    def argmax(self, dim=None, keepdim: bool = False):
        return _ops.arg_extreme(self, dim, keepdim, largest=True)

    def argmin(self, dim=None, keepdim: bool = False):
        return _ops.arg_extreme(self, dim, keepdim, largest=False)

    # --- shape --------------------------------------------------------------------------------
    def size(self, dim=None):
        return self.shape if dim is None else self.shape[_ops.wrap_dim(dim, self.ndim)]

    def dim(self) -> int:
        return self.ndim

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.Reshape.apply(self, shape=tuple(int(s) for s in shape))

    view = reshape

    def contiguous(self):
        return self

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(_ops.wrap_dim(d, self.ndim) for d in dims) != list(range(self.ndim)):
            raise RuntimeError(f"permute: dims {dims} are not a permutation of the {self.ndim} "
                               f"dims of a tensor of shape {self.shape}")
        return _ops.Permute.apply(self, dims=tuple(_ops.wrap_dim(d, self.ndim) for d in dims))

    def transpose(self, dim0, dim1):
        """Swap two dims (torch's meaning; permute() takes a full order)."""
        dims = list(range(self.ndim))
        a, b = _ops.wrap_dim(dim0, self.ndim), _ops.wrap_dim(dim1, self.ndim)
        dims[a], dims[b] = dims[b], dims[a]
        return _ops.Permute.apply(self, dims=tuple(dims))

    @property
    def T(self):
        return _ops.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            dims = {_ops.wrap_dim(d, self.ndim) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
            shape = tuple(n for i, n in enumerate(self.shape) if not (i in dims and n == 1))
        return self.reshape(shape)

    def unsqueeze(self, dim):
        d = _ops.wrap_dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        from .nn import functional as F
        return F.flatten(self, start_dim, end_dim)

    def expand(self, *sizes):
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        return _ops.expand(self, sizes)

    def __getitem__(self, index):
        return _ops.Index.apply(self, index=_ops.plain_index(index))


def _data(x):
    return x.data if isinstance(x, Tensor) else x


from . import tensor_ops as _ops  # noqa: E402  (the ops subclass Function and build Tensors)
from .tensor_ops import cat, stack, where  # noqa: E402,F401
