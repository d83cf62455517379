"""A thin autograd Tensor over numpy arrays.

Every differentiable op is a small `Function` subclass with `forward` and `backward` on plain
ndarrays; the instance doubles as the context that keeps what backward needs. `Tensor.backward`
walks the graph in reverse topological order and hands each op the gradient of its output.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled"]

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
    backward(grad) -> one gradient (or None) per tensor input."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.needs_grad = tuple(t.requires_grad for t in inputs)

    @classmethod
    def apply(cls, *inputs, **options) -> "Tensor":
        inputs = tuple(as_tensor(x) for x in inputs)
        ctx = cls(inputs)
        out = ctx.forward(*(t.data for t in inputs), **options)
        record = _grad_state.enabled and any(ctx.needs_grad)
        result = Tensor(out, requires_grad=record)
        if record:
            result._ctx = ctx
        return result

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


def _to_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data, dtype=dtype)
    if dtype is None and arr.dtype == np.float64:
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


class Tensor:
    """An ndarray plus the op that produced it. Leaf tensors that require grad collect .grad."""

    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__

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
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) * grad into every leaf's .grad that requires grad."""
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
            if node._ctx is None:
                if node.grad is None:
                    node.grad = np.array(g, dtype=node.dtype)  # own copy, so += below is safe
                else:
                    node.grad += g
                continue
            ctx = node._ctx
            input_grads = ctx.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
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

    # --- arithmetic ---------------------------------------------------------------------------
    def __add__(self, other):
        return Add.apply(self, as_tensor(other, self))

    def __radd__(self, other):
        return Add.apply(as_tensor(other, self), self)

    def __sub__(self, other):
        return Sub.apply(self, as_tensor(other, self))

    def __rsub__(self, other):
        return Sub.apply(as_tensor(other, self), self)

    def __mul__(self, other):
        return Mul.apply(self, as_tensor(other, self))

    def __rmul__(self, other):
        return Mul.apply(as_tensor(other, self), self)

    def __truediv__(self, other):
        return Div.apply(self, as_tensor(other, self))

    def __rtruediv__(self, other):
        return Div.apply(as_tensor(other, self), self)

    def __neg__(self):
        return Neg.apply(self)

    def __pow__(self, exponent):
        if isinstance(exponent, np.ndarray) and exponent.ndim == 0:
            exponent = exponent[()]  # a 0-d array as its numpy scalar
        if not isinstance(exponent, (bool, int, float, np.number, np.bool_)):
            raise TypeError("only a python number is supported as the exponent")
        return Pow.apply(self, exponent=exponent)

    def __matmul__(self, other):
        return MatMul.apply(self, as_tensor(other))

    def __rmatmul__(self, other):
        return MatMul.apply(as_tensor(other), self)

    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def sum(self, axis=None, keepdims: bool = False):
        return Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        axes = range(self.ndim) if axis is None else np.atleast_1d(axis)
        count = int(np.prod([self.shape[a] for a in axes]))
        return self.sum(axis=axis, keepdims=keepdims) / count

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape.apply(self, shape=shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        return self.transpose()


# --- ops ------------------------------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        a, b = _promote(a, b)
        return a + b

    def backward(self, g):
        return unbroadcast(g, self.shapes[0]), unbroadcast(g, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        a, b = _promote(a, b)
        return a - b

    def backward(self, g):
        return unbroadcast(g, self.shapes[0]), unbroadcast(-g, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b = _promote(a, b)
        return a * b

    def backward(self, g):
        ga = unbroadcast(g * self.b, self.a.shape) if self.needs_grad[0] else None
        gb = unbroadcast(g * self.a, self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b = _promote(a, b, floating=True)  # true division, as in torch
        return a / b

    def backward(self, g):
        ga = unbroadcast(g / self.b, self.a.shape) if self.needs_grad[0] else None
        gb = unbroadcast(-g * self.a / (self.b * self.b), self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    """a ** a python number; the exponent is a wrapped scalar for dtype purposes, so float32
    stays float32 even for a np.float64 exponent, and int ** float is float32."""

    def forward(self, a, exponent):
        dtype = _scalar_dtype(exponent, a.dtype)
        a = a.astype(dtype, copy=False)
        self.a, self.exponent = a, dtype.type(exponent)
        return a ** self.exponent

    def backward(self, g):
        if self.exponent == 0:
            return np.zeros_like(g)  # d(x**0)/dx = 0 everywhere, also at x = 0 (torch does so)
        return g * self.exponent * self.a ** (self.exponent - 1)


class Exp(Function):
    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return g / self.a


class MatMul(Function):
    """numpy.matmul semantics: 1-d operands are promoted, leading dims broadcast."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        # restore the unit dims that matmul dropped for 1-d operands
        if b.ndim == 1:
            g = g[..., None]
        if a.ndim == 1:
            g = g[..., None, :]
        ga = gb = None
        if self.needs_grad[0]:
            ga = unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_grad[1]:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb


class Sum(Function):
    def forward(self, a, axis, keepdims):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):
        if self.axis is not None and not self.keepdims:
            g = np.expand_dims(g, tuple(np.atleast_1d(self.axis)))
        return np.broadcast_to(g, self.shape)


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.shape)


class Transpose(Function):
    def forward(self, a, axes):
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, g):
        if self.axes is None:
            return np.transpose(g)
        return np.transpose(g, np.argsort(self.axes))
