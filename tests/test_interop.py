"""Inputs from other libraries: anything numpy can view (buffer protocol, __array__,
__array_interface__) and DLPack producers, read in place when already dense float32/float64."""
import array
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import fastbp
from fastbp import reference as R


class ArrayInterface:
    def __init__(self, a):
        self.a = a
        self.__array_interface__ = a.__array_interface__


class ArrayMethod:
    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a


class DLPackOnly:
    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


WRAPPERS = {
    "memoryview": memoryview,
    "array_interface": ArrayInterface,
    "array_method": ArrayMethod,
    "dlpack": DLPackOnly,
}


def reads_in_place(value, original):
    """Whether the kernels read `original`'s memory when handed `value` (no copy was made)."""
    return address(fastbp._core.kernel_view("test", "value", value)) == address(original)


def address(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("kind", WRAPPERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_and_linear_read_wrapped_inputs_in_place(kind, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 7)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    wrap = WRAPPERS[kind]
    y = fastbp.conv2d(wrap(x), wrap(w), padding=1)
    assert type(y) is np.ndarray and y.dtype == dtype
    np.testing.assert_allclose(y, R.conv2d(x, w, padding=1), rtol=1e-5, atol=1e-5)
    assert reads_in_place(wrap(x), x) and reads_in_place(wrap(w), w)
    xl = rng.standard_normal((5, 6)).astype(dtype)
    wl = rng.standard_normal((3, 6)).astype(dtype)
    out = fastbp.linear(wrap(xl), wrap(wl))
    np.testing.assert_allclose(out, xl @ wl.T, rtol=1e-5, atol=1e-5)
    assert reads_in_place(wrap(xl), xl)
    assert not reads_in_place(xl[:, ::2], xl)  # strided: copied into a dense array


def test_buffer_protocol_and_nested_lists():
    a = array.array("d", [1.0, 2.0, 3.0, 4.0])
    b = [[1.0], [0.5]]
    got = fastbp.matmul(np.frombuffer(a).reshape(2, 2), b)
    np.testing.assert_allclose(got, np.array([[2.0], [5.0]]))
    got = fastbp.linear(memoryview(np.ones((2, 3))), np.full((4, 3), 2.0))
    np.testing.assert_allclose(got, np.full((2, 4), 6.0))


class Sub(np.ndarray):
    pass


def test_subclasses_come_back_as_plain_ndarrays():
    m = np.eye(3).view(Sub)
    assert type(fastbp.matmul(m, m)) is np.ndarray
    assert type(fastbp.conv1d(np.ones((1, 2, 5)).view(Sub), np.ones((3, 2, 2)))) is np.ndarray
    masked = np.ma.masked_array(np.ones((2, 3)), mask=False)
    assert type(fastbp.linear(masked, np.ones((4, 3)))) is np.ndarray


def test_torch_tensors_in_place():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 11)
    w = torch.randn(5, 3, 3)
    y = fastbp.conv1d(x, w, padding=1)
    expect = torch.nn.functional.conv1d(x, w, padding=1).numpy()
    np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-5)
    view = fastbp._core.kernel_view("test", "value", x)
    assert address(view) == x.data_ptr()
    dx, dw, _ = fastbp.conv1d_backward(torch.ones(2, 5, 11), x, w, padding=1)
    assert dx.shape == (2, 3, 11) and dw.shape == (5, 3, 3)


def test_torch_tensor_that_requires_grad_is_a_clear_error():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(TypeError, match="input"):
        fastbp.linear(x, np.ones((4, 3), np.float32))


JAX_CHECK = """
import jax.numpy as jnp, numpy as np, fastbp
x = jnp.ones((2, 3, 8, 8), dtype=jnp.float32)
w = jnp.ones((4, 3, 3, 3), dtype=jnp.float32)
y = fastbp.conv2d(x, w)
assert type(y) is np.ndarray
np.testing.assert_allclose(y, np.full((2, 4, 6, 6), 27.0, np.float32))
print("ok")
"""


def test_jax_arrays():
    # in a child process: JAX's threads would make later fork() tests warn
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    out = subprocess.run([sys.executable, "-c", JAX_CHECK], capture_output=True, text=True,
                         cwd=os.path.dirname(sys.executable), timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_none_is_a_clear_error():
    w = np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(TypeError, match="input"):
        fastbp.conv2d(None, w)
    with pytest.raises(TypeError, match="weight"):
        fastbp.conv2d(np.ones((1, 3, 5, 5), np.float32), None)
    with pytest.raises(TypeError, match="grad_output"):
        fastbp.conv2d_backward(None, np.ones((1, 3, 5, 5), np.float32), w)
    with pytest.raises(TypeError, match="grad_output"):
        fastbp.linear_backward(None, np.ones((2, 3)), np.ones((4, 3)))
