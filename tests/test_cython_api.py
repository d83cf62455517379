"""fastbp.cython_api from a user's own Cython extension (tests/cython_api_user.pyx), compiled
against the installed fastbp into a temporary folder: results against numpy and
fastbp.reference, bitwise against fastbp's Python API, and the error code of every bad size."""
import os
import threading

import numpy as np
import pytest

import fastbp
from fastbp import _core, _cython_build, reference

SOURCE = os.path.join(os.path.dirname(__file__), "cython_api_user.pyx")
CAPABILITIES = list(_core.supported_capabilities())


@pytest.fixture(scope="module")
def ext(tmp_path_factory):
    reason = _cython_build.missing_tools()
    if reason:
        pytest.skip(f"cannot compile a Cython extension here: {reason}")
    return _cython_build.build_module(SOURCE, "fastbp_cython_api_user",
                                      tmp_path_factory.mktemp("cython-api"))


def test_installed_module_exports_every_function():
    """Without a compiler too: the module loads (after auditwheel as well) and carries its .pxd."""
    import fastbp.cython_api as api
    names = {f"{t}{op}" for t in "sd" for op in ("gemm", "conv2d_forward", "conv2d_backward",
                                                  "linear_forward", "linear_backward")}
    assert set(api.__pyx_capi__) == names | {"conv_output_size"}
    assert os.path.exists(os.path.join(os.path.dirname(api.__file__), "cython_api.pxd"))


@pytest.fixture(params=CAPABILITIES)
def capability(request):
    before = _core.cpu_capability()
    _core.set_cpu_capability(request.param)
    yield request.param
    _core.set_cpu_capability(before)


def null(dtype):
    """An empty array: the extension passes it as a NULL pointer."""
    return np.empty(0, dtype)


def flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


def stored(rng, rows, cols, ld, dtype):
    """A rows x cols matrix stored with row pitch ld >= cols, as (rows, ld) array."""
    return rng.standard_normal((rows, ld)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_numpy(ext, capability, dtype, trans_a, trans_b):
    rng = np.random.default_rng(1)
    for M, N, K in [(1, 1, 1), (5, 7, 3), (33, 17, 65), (97, 130, 31), (1, 300, 129)]:
        ar, ac = (K, M) if trans_a else (M, K)
        br, bc = (N, K) if trans_b else (K, N)
        a, b, c = stored(rng, ar, ac, ac + 3, dtype), stored(rng, br, bc, bc + 1, dtype), stored(rng, M, N, N + 2, dtype)
        c0 = c.copy()
        alpha, beta = 1.5, -0.5
        code = ext.gemm(trans_a, trans_b, M, N, K, alpha, a.reshape(-1), ac + 3, b.reshape(-1),
                        bc + 1, beta, c.reshape(-1), N + 2)
        assert code == 0
        opa, opb = a[:, :ac].astype(np.float64), b[:, :bc].astype(np.float64)
        want = alpha * ((opa.T if trans_a else opa) @ (opb.T if trans_b else opb)) + beta * c0[:, :N]
        np.testing.assert_allclose(c[:, :N], want, **tol(dtype))
        np.testing.assert_array_equal(c[:, N:], c0[:, N:])  # beyond N, C's rows are left alone


def test_gemm_in_a_nogil_loop_and_threads(ext):
    """Repeated calls without the GIL, from two Python threads at once, give numpy's product."""
    rng = np.random.default_rng(2)
    M, N, K = 130, 97, 211
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    outs = [np.full(M * N, np.nan, np.float32) for _ in range(2)]
    codes = []

    def run(c):
        codes.append(ext.gemm(False, False, M, N, K, 1.0, a.reshape(-1), K, b.reshape(-1), N,
                              0.0, c, N, repeats=20))
    threads = [threading.Thread(target=run, args=(c,)) for c in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [0, 0]
    for c in outs:
        np.testing.assert_allclose(c.reshape(M, N), want, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(c.reshape(M, N), fastbp.matmul(a, b))


CONVS = [  # x shape, weight shape, stride, padding, dilation, groups
    ((2, 3, 11, 9), (5, 3, 3, 2), (1, 1), (1, 0), (1, 1), 1),
    ((1, 4, 13, 17), (6, 2, 3, 3), (2, 3), (2, 1), (1, 2), 2),
    ((3, 50, 7, 9), (7, 50, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((4, 6, 1, 37), (9, 6, 1, 5), (1, 2), (0, 2), (1, 1), 1),  # conv1d as H = kh = 1
]


def conv_sizes(xs, ws, s, p, d, g):
    return (xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], *s, *p, *d, g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv2d_forward_and_backward(ext, capability, dtype, case):
    xs, ws, s, p, d, g = CONVS[case]
    rng = np.random.default_rng(case)
    x, w, b = (rng.standard_normal(sh).astype(dtype) for sh in (xs, ws, ws[:1]))
    kw = dict(stride=s, padding=p, dilation=d, groups=g)
    want = fastbp.conv2d(x, w, b, **kw)
    np.testing.assert_allclose(want, reference.conv2d(x, w, b, **kw), **tol(dtype))
    sizes = conv_sizes(xs, ws, s, p, d, g)
    assert (ext.conv_output_size(xs[2], ws[2], s[0], p[0], d[0]),
            ext.conv_output_size(xs[3], ws[3], s[1], p[1], d[1])) == want.shape[2:]
    y = np.full(want.size, np.nan, dtype)
    assert ext.conv2d_forward(flat(x), flat(w), flat(b), y, sizes, repeats=3) == 0
    np.testing.assert_array_equal(y.reshape(want.shape), want)  # the same kernels, the same bits

    dy = rng.standard_normal(want.shape).astype(dtype)
    grads = fastbp.conv2d_backward(dy, x, w, **kw)
    got = [np.full(a.size, np.nan, dtype) for a in grads]
    assert ext.conv2d_backward(flat(dy), flat(x), flat(w), *got, sizes) == 0
    for g_got, g_want in zip(got, grads):
        np.testing.assert_array_equal(g_got.reshape(g_want.shape), g_want)
    # gradients not wanted are NULL, and so are the inputs only they would read
    gw = np.full(w.size, np.nan, dtype)
    assert ext.conv2d_backward(flat(dy), flat(x), null(dtype), null(dtype), gw, null(dtype),
                               sizes) == 0
    np.testing.assert_array_equal(gw.reshape(w.shape), grads[1])


def test_conv2d_without_bias_and_empty_batch(ext):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 8), dtype=np.float32)
    w = rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
    sizes = conv_sizes(x.shape, w.shape, (1, 1), (1, 1), (1, 1), 1)
    y = np.empty(2 * 4 * 8 * 8, np.float32)
    assert ext.conv2d_forward(flat(x), flat(w), null(np.float32), y, sizes) == 0
    np.testing.assert_allclose(y.reshape(2, 4, 8, 8), reference.conv2d(x, w, padding=1),
                               rtol=1e-4, atol=1e-4)
    # N = 0: nothing to read; the weight and bias gradients are zeros
    sizes0 = (0,) + sizes[1:]
    gw, gb = np.full(w.size, np.nan, np.float32), np.full(4, np.nan, np.float32)
    assert ext.conv2d_forward(null(np.float32), flat(w), null(np.float32), null(np.float32), sizes0) == 0
    assert ext.conv2d_backward(null(np.float32), null(np.float32), null(np.float32),
                               null(np.float32), gw, gb, sizes0) == 0
    assert not gw.any() and not gb.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch,i,o", [(1, 1, 1), (7, 33, 5), (64, 129, 257), (0, 3, 4), (3, 0, 2)])
def test_linear_forward_and_backward(ext, dtype, batch, i, o):
    rng = np.random.default_rng(batch + i + o)
    x, w, b, dy = (rng.standard_normal(sh).astype(dtype) for sh in ((batch, i), (o, i), (o,), (batch, o)))
    y = np.full(batch * o, np.nan, dtype)
    assert ext.linear_forward(flat(x), flat(w), b, y, batch, i, o) == 0
    np.testing.assert_allclose(y.reshape(batch, o), reference.linear(x, w, b), **tol(dtype))
    got = [np.full(n, np.nan, dtype) for n in (batch * i, o * i, o)]
    assert ext.linear_backward(flat(dy), flat(x), flat(w), *got, batch, i, o) == 0
    for g_got, g_want in zip(got, reference.linear_backward(dy, x, w)):
        np.testing.assert_allclose(g_got.reshape(g_want.shape), g_want, **tol(dtype))


def test_bad_sizes_return_the_argument_position(ext):
    f, z = np.float32, np.zeros(64, np.float32)
    C = ext.CODES
    # gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
    assert ext.gemm(False, False, -1, 2, 2, 1.0, z, 2, z, 2, 0.0, z, 2) == -3
    assert ext.gemm(False, False, 2, 2, -2, 1.0, z, 2, z, 2, 0.0, z, 2) == -5
    assert ext.gemm(False, False, 2, 3, 4, 1.0, z, 3, z, 3, 0.0, z, 3) == -8   # lda < K
    assert ext.gemm(True, False, 2, 3, 4, 1.0, z, 2, z, 2, 0.0, z, 3) == -10   # ldb < N
    assert ext.gemm(False, True, 2, 3, 4, 1.0, z, 4, z, 4, 0.0, z, 2) == -13   # ldc < N
    assert ext.gemm(False, False, 2, 2, 2, 1.0, null(f), 2, z, 2, 0.0, z, 2) == -7
    assert ext.gemm(False, False, 2, 2, 2, 1.0, z, 2, null(f), 2, 0.0, z, 2) == -9
    assert ext.gemm(False, False, 2, 2, 2, 1.0, z, 2, z, 2, 0.0, null(f), 2) == -12
    assert ext.gemm(False, False, 2**40, 2**40, 1, 1.0, z, 1, z, 2**40, 0.0, z, 2**40) == C["TOO_LARGE"]
    assert ext.gemm(False, False, 0, 5, 5, 1.0, null(f), 5, null(f), 5, 0.0, null(f), 5) == 0

    ok = (1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1)  # N C H W O kh kw sh sw ph pw dh dw groups
    x, w, y = (np.zeros(n, f) for n in (50, 54, 75))
    assert ext.conv2d_forward(x, w, null(f), y, ok) == 0

    def conv(**change):
        names = "N C H W O kh kw sh sw ph pw dh dw groups".split()
        sizes = [change.get(n, v) for n, v in zip(names, ok)]
        return ext.conv2d_forward(x, w, null(f), y, sizes)
    # arguments: x 1, weight 2, bias 3, y 4, then N 5 ... groups 18
    assert conv(N=-1) == -5
    assert conv(C=0) == -6
    assert conv(W=0) == -8
    assert conv(kh=0) == -10
    assert conv(sw=0) == -13
    assert conv(ph=-1) == -14
    assert conv(dw=0) == -17
    assert conv(groups=0) == -18
    assert conv(groups=2) == -18            # 3 output channels do not split in 2 groups
    assert conv(kh=9) == -10                # the kernel is taller than the padded input
    assert conv(dw=4) == -11                # dilated, the kernel is wider
    assert conv(N=2**40, H=2**20) == C["TOO_LARGE"]
    assert conv(ph=2**62) == -14
    assert ext.conv2d_forward(null(f), w, null(f), y, ok) == -1
    assert ext.conv2d_forward(x, null(f), null(f), y, ok) == -2
    assert ext.conv2d_forward(x, w, null(f), null(f), ok) == -4
    # backward: grad_output 1, x 2, weight 3, then three gradients, then N 7 ... groups 20
    gx, gw, gb = np.zeros(50, f), np.zeros(54, f), np.zeros(3, f)
    assert ext.conv2d_backward(y, x, w, gx, gw, gb, ok[:13] + (5,)) == -20
    assert ext.conv2d_backward(null(f), x, w, gx, gw, gb, ok) == -1
    assert ext.conv2d_backward(y, null(f), w, gx, gw, gb, ok) == -2
    assert ext.conv2d_backward(y, x, null(f), gx, gw, gb, ok) == -3
    assert ext.conv2d_backward(y, null(f), null(f), null(f), null(f), gb, ok) == 0

    # linear(x 1, weight 2, bias 3, y 4, batch 5, in 6, out 7); backward sizes are 7..9
    assert ext.linear_forward(z, z, null(f), z, -1, 2, 2) == -5
    assert ext.linear_forward(z, z, null(f), z, 2, -2, 2) == -6
    assert ext.linear_forward(z, z, null(f), null(f), 2, 2, 2) == -4
    assert ext.linear_forward(z, z, null(f), z, 2**31, 2**31, 2**31) == C["TOO_LARGE"]
    assert ext.linear_backward(z, z, z, z, z, z, 2, 2, -1) == -9
    assert ext.linear_backward(z, null(f), z, z, z, z, 2, 2, 2) == -2
    assert ext.conv_output_size(5, 7, 1, 0, 1) == -1
    assert ext.conv_output_size(5, 3, 0, 1, 1) == -1


def test_follows_the_python_api_cpu_path(ext, capability):
    """set_cpu_capability switches the Cython API too: bitwise equal to fastbp.matmul on it."""
    rng = np.random.default_rng(3)
    M, N, K = 45, 70, 333
    a = rng.standard_normal((M, K))
    b = rng.standard_normal((K, N))
    c = np.empty(M * N)
    assert ext.gemm(False, False, M, N, K, 1.0, a.reshape(-1), K, b.reshape(-1), N, 0.0, c, N) == 0
    np.testing.assert_array_equal(c.reshape(M, N), fastbp.matmul(a, b))
