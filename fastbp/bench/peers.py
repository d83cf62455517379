"""The libraries fastbp is timed against, each as (forward, backward) callables for one layer.

numpy runs fastbp.reference; PyTorch runs torch.nn.functional with autograd; ONNX Runtime runs a
one-node model (Conv or Gemm, weights as initializers) on its CPUExecutionProvider, forward only;
cython is the course-style layer (Cython im2col + numpy matmul, fastbp._cython_peer), for
convolutions without groups or dilation. Peers are optional: a missing one is left out of the
run, and a peer that does not cover a layer gives (None, None) for it.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .. import functional as F
from .. import reference as R

Fns = tuple[Optional[Callable[[], Any]], Optional[Callable[[], Any]]]


def available() -> dict[str, str]:
    """{peer name: version} for every peer importable here."""
    found = {"numpy": np.__version__}
    torch = _import("torch")
    if torch is not None:
        found["torch"] = torch.__version__
    ort, onnx = _import("onnxruntime"), _import("onnx")
    if ort is not None and onnx is not None:
        found["onnxruntime"] = ort.__version__
    from .._cython_build import missing_tools
    if missing_tools() is None:
        found["cython"] = __import__("Cython").__version__
    return found


def _import(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def conv_fns(peer: str, x, w, b, dy, kwargs: dict, threads: int) -> Fns:
    one_d = x.ndim == 3
    if peer == "fastbp":
        conv, conv_bwd = (F.conv1d, F.conv1d_backward) if one_d else (F.conv2d, F.conv2d_backward)
        return (lambda: conv(x, w, b, **kwargs), lambda: conv_bwd(dy, x, w, **kwargs))
    if peer == "numpy":
        rconv, rconv_bwd = (R.conv1d, R.conv1d_backward) if one_d else (R.conv2d, R.conv2d_backward)
        return (lambda: rconv(x, w, b, **kwargs), lambda: rconv_bwd(dy, x, w, **kwargs))
    if peer == "torch":
        import torch
        op = torch.nn.functional.conv1d if one_d else torch.nn.functional.conv2d
        return _torch_fns(torch, op, (x, w, b), dy, kwargs)
    if peer == "onnxruntime":
        return (_ort_conv(x, w, b, kwargs, threads), None)
    if peer == "cython":
        if kwargs.get("groups", 1) != 1 or kwargs.get("dilation", 1) != 1:
            return (None, None)
        from .._cython_peer import conv_fns as cython_conv_fns
        return cython_conv_fns(x, w, b, dy, stride=kwargs.get("stride", 1),
                               padding=kwargs.get("padding", 0))
    raise ValueError(f"unknown peer {peer!r}")


def linear_fns(peer: str, x, w, b, dy, threads: int) -> Fns:
    if peer == "fastbp":
        return (lambda: F.linear(x, w, b), lambda: F.linear_backward(dy, x, w))
    if peer == "numpy":
        return (lambda: R.linear(x, w, b), lambda: R.linear_backward(dy, x, w))
    if peer == "torch":
        import torch
        return _torch_fns(torch, torch.nn.functional.linear, (x, w, b), dy, {})
    if peer == "onnxruntime":
        return (_ort_linear(x, w, b, threads), None)
    if peer == "cython":
        return (None, None)  # a convolution layer only
    raise ValueError(f"unknown peer {peer!r}")


def _torch_fns(torch, op, arrays, dy, kwargs) -> Fns:
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in arrays)
    tdy = torch.from_numpy(dy)
    ty = op(tx, tw, tb, **kwargs)

    def fwd():
        with torch.no_grad():
            return op(tx, tw, tb, **kwargs).numpy()

    return fwd, lambda: [g.numpy() for g in
                         torch.autograd.grad(ty, (tx, tw, tb), tdy, retain_graph=True)]


def _ort_session(node, inputs, initializers, output_shape, threads: int):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [node], "layer",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, a.shape) for name, a in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)],
        [numpy_helper.from_array(a, name) for name, a in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # ORT's workers spin between runs by default, long enough to take the cores from the
    # library timed next (fastbp's threads measured 10-100x slower after an ORT block, rest
    # included); ORT's own times are the same without it
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feed = dict(inputs)
    return lambda: session.run(None, feed)[0]


def _ort_conv(x, w, b, kwargs: dict, threads: int):
    from onnx import helper

    nd = x.ndim - 2
    def per_axis(v):
        return list(v) if isinstance(v, (tuple, list)) else [v] * nd
    pads = per_axis(kwargs.get("padding", 0))
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=list(w.shape[2:]),
                            strides=per_axis(kwargs.get("stride", 1)), pads=pads + pads,
                            dilations=per_axis(kwargs.get("dilation", 1)),
                            group=kwargs.get("groups", 1))
    out_shape = (F.conv1d if nd == 1 else F.conv2d)(x, w, b, **kwargs).shape
    return _ort_session(node, [("x", x)], [("w", w), ("b", b)], out_shape, threads)


def _ort_linear(x, w, b, threads: int):
    from onnx import helper

    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    return _ort_session(node, [("x", x)], [("w", w), ("b", b)], (x.shape[0], w.shape[0]), threads)
