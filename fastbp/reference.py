"""Pure-numpy reference implementations of every fastbp op: the oracle for tests.

Written for clarity, not speed. Semantics match ``torch.nn.functional`` and torch autograd.
Everything is computed in float64 and cast back to the input dtype. Validation is minimal:
fastbp.functional is the place that checks arguments carefully.
"""

import numpy as np

__all__ = [
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "linear",
    "linear_backward",
    "matmul",
    "batched_matmul",
    "conv_transpose1d",
    "conv_transpose1d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "numerical_grad",
]


# ---------------------------------------------------------------------------------------------
# argument normalisation


def _int_tuple(value, n, name):
    """An int or a length-n sequence of ints -> tuple of n ints (a 1-tuple is accepted for n=1)."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    values = tuple(int(v) for v in value)
    if len(values) != n:
        raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
    return values


def _padding_pairs(padding, kernel_size, stride, dilation):
    """padding (int, tuple, 'valid' or 'same') -> ((begin, end), ...) per spatial dim, as PyTorch.

    'same' pads dilation*(k-1) in total per dim, the extra element (even kernels) at the end.
    """
    n = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' requires stride 1, got stride={stride}")
            pairs = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    return tuple((p, p) for p in _int_tuple(padding, n, "padding"))


def _compute_dtype(*arrays):
    """The dtype results are returned in: the (common) dtype of the inputs."""
    return np.result_type(*[a.dtype for a in arrays if a is not None])


# ---------------------------------------------------------------------------------------------
# conv2d: loop over kernel offsets (i, j); each offset contributes one tensor contraction


def _conv2d_geometry(x_shape, w_shape, stride, padding, dilation):
    stride = _int_tuple(stride, 2, "stride")
    dilation = _int_tuple(dilation, 2, "dilation")
    kernel_size = tuple(w_shape[2:])
    pads = _padding_pairs(padding, kernel_size, stride, dilation)
    padded = [x_shape[2 + d] + pads[d][0] + pads[d][1] for d in range(2)]
    out = [(padded[d] - dilation[d] * (kernel_size[d] - 1) - 1) // stride[d] + 1 for d in range(2)]
    if min(out) < 1:
        raise ValueError(f"kernel {kernel_size} (dilation {dilation}) larger than padded input {padded}")
    return stride, dilation, pads, tuple(out)


def _window(i, j, stride, dilation, out_hw):
    """Index into the padded input selecting, for kernel offset (i, j), every output position."""
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out_hw
    rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
    cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
    return (slice(None), slice(None), rows, cols)


def _split_groups(a, groups):
    """(N, C, ...) -> (N, groups, C / groups, ...)"""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, weight = np.asarray(x), np.asarray(weight)
    dtype = _compute_dtype(x, weight, None if bias is None else np.asarray(bias))
    stride, dilation, pads, out_hw = _conv2d_geometry(x.shape, weight.shape, stride, padding, dilation)
    n, c_out = x.shape[0], weight.shape[0]
    kh, kw = weight.shape[2:]

    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0)) + pads)
    w = _split_groups(weight.astype(np.float64)[None], groups)[0]  # (G, C_out/G, C_in/G, kH, kW)
    y = np.zeros((n, groups, c_out // groups) + out_hw)
    for i in range(kh):
        for j in range(kw):
            patch = _split_groups(xp[_window(i, j, stride, dilation, out_hw)], groups)
            y += np.einsum("ngchw,goc->ngohw", patch, w[:, :, :, i, j])
    y = y.reshape(n, c_out, *out_hw)
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[:, None, None]
    return y.astype(dtype)


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    input_grad=True, weight_grad=True, bias_grad=True):
    grad_output, x, weight = np.asarray(grad_output), np.asarray(x), np.asarray(weight)
    dtype = _compute_dtype(grad_output, x, weight)
    stride, dilation, pads, out_hw = _conv2d_geometry(x.shape, weight.shape, stride, padding, dilation)
    kh, kw = weight.shape[2:]

    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0)) + pads)
    w = _split_groups(weight.astype(np.float64)[None], groups)[0]  # (G, C_out/G, C_in/G, kH, kW)
    gy = _split_groups(grad_output.astype(np.float64), groups)  # (N, G, C_out/G, Ho, Wo)

    gx = gw = gb = None
    if input_grad:
        gxp = np.zeros_like(xp)
        for i in range(kh):
            for j in range(kw):
                window = _window(i, j, stride, dilation, out_hw)
                contribution = np.einsum("ngohw,goc->ngchw", gy, w[:, :, :, i, j])
                gxp[window] += contribution.reshape(xp[window].shape)
        (top, _), (left, _) = pads
        gx = gxp[:, :, top:top + x.shape[2], left:left + x.shape[3]].astype(dtype)
    if weight_grad:
        gw = np.zeros_like(w)
        for i in range(kh):
            for j in range(kw):
                patch = _split_groups(xp[_window(i, j, stride, dilation, out_hw)], groups)
                gw[:, :, :, i, j] = np.einsum("ngchw,ngohw->goc", patch, gy)
        gw = gw.reshape(weight.shape).astype(dtype)
    if bias_grad:
        gb = grad_output.astype(np.float64).sum(axis=(0, 2, 3)).astype(dtype)
    return gx, gw, gb


# ---------------------------------------------------------------------------------------------
# conv1d: conv2d over a height-1 image


def _conv1d_as_2d(stride, padding, dilation):
    stride = (1,) + _int_tuple(stride, 1, "stride")
    dilation = (1,) + _int_tuple(dilation, 1, "dilation")
    if not isinstance(padding, str):
        padding = (0,) + _int_tuple(padding, 1, "padding")
    return stride, padding, dilation


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, weight = np.asarray(x), np.asarray(weight)
    stride, padding, dilation = _conv1d_as_2d(stride, padding, dilation)
    y = conv2d(x[:, :, None, :], weight[:, :, None, :], bias, stride, padding, dilation, groups)
    return y[:, :, 0, :]


def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    input_grad=True, weight_grad=True, bias_grad=True):
    grad_output, x, weight = np.asarray(grad_output), np.asarray(x), np.asarray(weight)
    stride, padding, dilation = _conv1d_as_2d(stride, padding, dilation)
    gx, gw, gb = conv2d_backward(grad_output[:, :, None, :], x[:, :, None, :], weight[:, :, None, :],
                                 stride, padding, dilation, groups, input_grad=input_grad,
                                 weight_grad=weight_grad, bias_grad=bias_grad)
    return (None if gx is None else gx[:, :, 0, :],
            None if gw is None else gw[:, :, 0, :],
            gb)


# ---------------------------------------------------------------------------------------------
# linear and matmul


def linear(x, weight, bias=None):
    x, weight = np.asarray(x), np.asarray(weight)
    dtype = _compute_dtype(x, weight, None if bias is None else np.asarray(bias))
    y = x.astype(np.float64) @ weight.astype(np.float64).T
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)
    return y.astype(dtype)


def linear_backward(grad_output, x, weight, *, input_grad=True, weight_grad=True, bias_grad=True):
    grad_output, x, weight = np.asarray(grad_output), np.asarray(x), np.asarray(weight)
    dtype = _compute_dtype(grad_output, x, weight)
    rows = int(np.prod(x.shape[:-1]))  # explicit, since reshape(-1, 0) is ambiguous
    gy = grad_output.astype(np.float64).reshape(rows, weight.shape[0])
    x2 = x.astype(np.float64).reshape(rows, weight.shape[1])
    gx = (gy @ weight.astype(np.float64)).reshape(x.shape).astype(dtype) if input_grad else None
    gw = (gy.T @ x2).astype(dtype) if weight_grad else None
    gb = gy.sum(axis=0).astype(dtype) if bias_grad else None
    return gx, gw, gb


def matmul(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    a, b = np.asarray(a), np.asarray(b)
    dtype = _compute_dtype(a, b)
    op_a = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    op_b = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    result = alpha * (op_a @ op_b)
    if out is None:
        return result.astype(dtype)
    if beta != 0:
        result += beta * out.astype(np.float64)
    out[...] = result
    return out


def batched_matmul(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(_compute_dtype(a, b))


# ---------------------------------------------------------------------------------------------
# transposed convolution: every input pixel scatters weight * value into a window of the
# output; with the padding cropped off both sides (and output_padding extra at the end)


def _transpose_geometry(x_shape, w_shape, stride, padding, output_padding, dilation):
    stride, dilation = _int_tuple(stride, 2, "stride"), _int_tuple(dilation, 2, "dilation")
    padding = _int_tuple(padding, 2, "padding")
    output_padding = _int_tuple(output_padding, 2, "output_padding")
    k = w_shape[2:]
    full = tuple((x_shape[2 + a] - 1) * stride[a] + dilation[a] * (k[a] - 1) + 1 + output_padding[a]
                 for a in range(2))
    return stride, padding, dilation, full


def _transpose_windows(x_shape, w_shape, stride, dilation):
    """For each kernel offset (i, j): the index of the uncropped output that input pixels hit."""
    h, w = x_shape[2:]
    for i in range(w_shape[2]):
        for j in range(w_shape[3]):
            rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (h - 1) + 1, stride[0])
            cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (w - 1) + 1, stride[1])
            yield i, j, (slice(None), slice(None), slice(None), rows, cols)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    x, weight = np.asarray(x), np.asarray(weight)
    dtype = _compute_dtype(x, weight, None if bias is None else np.asarray(bias))
    stride, padding, dilation, full = _transpose_geometry(x.shape, weight.shape, stride, padding,
                                                          output_padding, dilation)
    n, c_in = x.shape[:2]
    c_out_g = weight.shape[1]
    xg = _split_groups(x.astype(np.float64), groups)  # (N, G, C_in/G, H, W)
    wg = weight.astype(np.float64).reshape(groups, c_in // groups, c_out_g, *weight.shape[2:])
    y = np.zeros((n, groups, c_out_g) + full)
    for i, j, window in _transpose_windows(x.shape, weight.shape, stride, dilation):
        y[window] += np.einsum("ngchw,gco->ngohw", xg, wg[..., i, j])
    (ph, pw), (fh, fw) = padding, full
    y = y.reshape(n, groups * c_out_g, *full)[:, :, ph:fh - ph, pw:fw - pw]
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)[:, None, None]
    return y.astype(dtype)


def conv_transpose2d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, input_grad=True, weight_grad=True,
                              bias_grad=True):
    grad_output, x, weight = np.asarray(grad_output), np.asarray(x), np.asarray(weight)
    dtype = _compute_dtype(grad_output, x, weight)
    stride, padding, dilation, full = _transpose_geometry(x.shape, weight.shape, stride, padding,
                                                          output_padding, dilation)
    n, c_in = x.shape[:2]
    c_out_g = weight.shape[1]
    (ph, pw), (fh, fw) = padding, full
    g = np.zeros((n, groups * c_out_g) + full)
    g[:, :, ph:fh - ph, pw:fw - pw] = grad_output
    g = _split_groups(g, groups)  # (N, G, C_out/G, full H, full W)
    xg = _split_groups(x.astype(np.float64), groups)
    wg = weight.astype(np.float64).reshape(groups, c_in // groups, c_out_g, *weight.shape[2:])
    gx = np.zeros_like(xg) if input_grad else None
    gw = np.zeros_like(wg) if weight_grad else None
    for i, j, window in _transpose_windows(x.shape, weight.shape, stride, dilation):
        if input_grad:
            gx += np.einsum("ngohw,gco->ngchw", g[window], wg[..., i, j])
        if gw is not None:
            gw[..., i, j] = np.einsum("ngchw,ngohw->gco", xg, g[window])
    return (None if gx is None else gx.reshape(x.shape).astype(dtype),
            None if gw is None else gw.reshape(weight.shape).astype(dtype),
            grad_output.astype(np.float64).sum(axis=(0, 2, 3)).astype(dtype) if bias_grad else None)


def _transpose1d_as_2d(stride, padding, output_padding, dilation):
    return ((1,) + _int_tuple(stride, 1, "stride"), (0,) + _int_tuple(padding, 1, "padding"),
            (0,) + _int_tuple(output_padding, 1, "output_padding"),
            (1,) + _int_tuple(dilation, 1, "dilation"))


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    x, weight = np.asarray(x), np.asarray(weight)
    s, p, q, d = _transpose1d_as_2d(stride, padding, output_padding, dilation)
    return conv_transpose2d(x[:, :, None], weight[:, :, None], bias, s, p, q, groups, d)[:, :, 0]


def conv_transpose1d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, input_grad=True, weight_grad=True,
                              bias_grad=True):
    grad_output, x, weight = np.asarray(grad_output), np.asarray(x), np.asarray(weight)
    s, p, q, d = _transpose1d_as_2d(stride, padding, output_padding, dilation)
    gx, gw, gb = conv_transpose2d_backward(grad_output[:, :, None], x[:, :, None],
                                           weight[:, :, None], s, p, q, groups, d,
                                           input_grad=input_grad, weight_grad=weight_grad,
                                           bias_grad=bias_grad)
    return (None if gx is None else gx[:, :, 0], None if gw is None else gw[:, :, 0], gb)


# ---------------------------------------------------------------------------------------------
# finite differences


def numerical_grad(f, x, grad_output, eps=1e-6):
    """Central-difference gradient of sum(f(x) * grad_output) with respect to x."""
    x = np.array(x, dtype=np.float64)  # a copy, perturbed in place
    grad_output = np.asarray(grad_output, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + eps
        plus = np.sum(f(x) * grad_output)
        x[index] = original - eps
        minus = np.sum(f(x) * grad_output)
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad
