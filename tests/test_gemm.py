"""fastbp.matmul (the packed GEMM) on every CPU path this host supports.

Sizes sit around and between the micro-tile multiples of every path (4/6/12 rows, 8/16/32
columns) and the block sizes, so edge slivers, edge tiles and several k slices are all exercised.
"""
import itertools

import numpy as np
import pytest

import fastbp
from fastbp import _core

CAPABILITIES = list(_core.supported_capabilities())
DTYPES = [np.float32, np.float64]
EDGE_SIZES = [1, 2, 5, 11, 12, 13, 17, 31, 32, 33, 47, 95, 97, 127, 191, 255, 257, 300]


@pytest.fixture(params=CAPABILITIES)
def capability(request):
    before = _core.cpu_capability()
    _core.set_cpu_capability(request.param)
    yield request.param
    _core.set_cpu_capability(before)


def expected(a, b, trans_a, trans_b, alpha, beta, c):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    r = alpha * ((a64.T if trans_a else a64) @ (b64.T if trans_b else b64))
    return r if c is None else r + beta * c.astype(np.float64)


def assert_close(got, want, k, dtype):
    tol = (2e-6 if dtype == np.float32 else 1e-14) * max(k, 1) ** 0.5 * 8
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(np.abs(want).max(initial=0), 1))


def operands(rng, m, n, k, trans_a, trans_b, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def size_triples(count, seed):
    rng = np.random.default_rng(seed)
    triples = set()
    while len(triples) < count:
        triples.add(tuple(int(rng.choice(EDGE_SIZES)) for _ in range(3)))
    return sorted(triples)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
def test_edge_sizes(capability, trans_a, trans_b, dtype):
    rng = np.random.default_rng(7)
    for m, n, k in size_triples(24, seed=hash((trans_a, trans_b)) % 1000):
        a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
        got = fastbp.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
        assert got.dtype == dtype and got.shape == (m, n)
        assert_close(got, expected(a, b, trans_a, trans_b, 1.0, 0.0, None), k, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_matrix_vector_products(capability, dtype):
    """M == 1 or N == 1 runs without packing: dot products (four rows at a time, vector lanes
    along k, the rest of k added in order) or row sweeps, for every remainder of k and rows."""
    rng = np.random.default_rng(5)
    for k in (1, 7, 15, 16, 17, 31, 32, 33, 100, 1025):
        for count in (1, 3, 4, 5, 64, 65, 130):
            for trans_a, trans_b in itertools.product([False, True], repeat=2):
                for m, n in ((1, count), (count, 1)):
                    a, b = operands(rng, m, n, k, trans_a, trans_b, dtype)
                    got = fastbp.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
                    assert_close(got, expected(a, b, trans_a, trans_b, 1.0, 0.0, None), k, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_rows_in_eights(capability, dtype):
    """Row counts that are multiples of 8 but not of 12 run on the AVX-512 path's wide tiles
    (8 rows, three vectors of columns): their column edges, every width of edge tile, several
    k slices and beta."""
    rng = np.random.default_rng(11)
    for m in (8, 16, 40, 64, 136):
        for n, k in ((1, 7), (16, 385), (17, 3), (33, 64), (47, 5), (48, 9), (49, 400), (97, 2),
                     (481, 31)):
            a, b = operands(rng, m, n, k, False, False, dtype)
            c = rng.standard_normal((m, n)).astype(dtype)
            want = expected(a, b, False, False, 0.5, -1.5, c)
            fastbp.matmul(a, b, out=c, alpha=0.5, beta=-1.5)
            assert_close(c, want, k, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.5, 1.0), (2.0, -3.0), (0.0, 0.5)])
def test_alpha_beta_out(capability, alpha, beta, dtype):
    rng = np.random.default_rng(3)
    for (m, n, k), (ta, tb) in zip([(13, 33, 31), (97, 17, 400), (1, 300, 12), (45, 1, 785)],
                                   itertools.product([False, True], repeat=2)):
        a, b = operands(rng, m, n, k, ta, tb, dtype)
        c = rng.standard_normal((m, n)).astype(dtype)
        c0 = c.copy()
        if beta == 0.0:
            c[...] = np.nan  # beta == 0 means out is not read
        r = fastbp.matmul(a, b, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta, out=c)
        assert r is c
        assert_close(c, expected(a, b, ta, tb, alpha, beta, None if beta == 0.0 else c0), k, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_strided_views(capability, dtype):
    rng = np.random.default_rng(5)
    big_a = rng.standard_normal((90, 120)).astype(dtype)
    big_b = rng.standard_normal((150, 80)).astype(dtype)
    views = [
        (big_a[::2, 1:99:3], big_b[:33, ::2]),          # row and column strides
        (big_a[::-3, ::-4], big_b[10:40, ::-2]),        # negative strides
        (np.asfortranarray(big_a[:40, :50]), big_b[:50, :37].T.copy().T),  # Fortran order
    ]
    for a, b in views:
        got = fastbp.matmul(a, b)
        assert_close(got, expected(np.array(a), np.array(b), False, False, 1.0, 0.0, None), a.shape[1], dtype)
    out = np.zeros((80, 70), dtype)[::2, 5:38]  # out with a row stride
    a, b = big_a[:40, :20], big_b[:20, :33]
    fastbp.matmul(a, b, out=out)
    assert_close(out, expected(a, b, False, False, 1.0, 0.0, None), 20, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_transposing_pack_same_bits(capability, dtype):
    """An operand whose lanes run along k in memory (a row-major A, a Bᵀ) is packed by the
    path's transpose kernel, one whose lanes are contiguous by a copy: the packed slivers, and so
    the products, must be the same bits. Sizes cut the 16-, 8-, 4- and 2-element blocks, the
    slivers and the k slices at every edge."""
    rng = np.random.default_rng(17)
    for m, n, k in [(2, 2, 1), (5, 17, 3), (12, 48, 16), (13, 49, 17), (24, 33, 400),
                    (37, 129, 333), (64, 256, 784), (100, 3, 1000), (7, 300, 41)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        a_lanes, b_lanes = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
        want = fastbp.matmul(a_lanes, b, trans_a=True)      # both copied
        assert np.array_equal(fastbp.matmul(a, b), want)     # A transposed
        assert np.array_equal(fastbp.matmul(a_lanes, b_lanes, trans_a=True, trans_b=True),
                              want)                          # B transposed
        assert np.array_equal(fastbp.matmul(a, b_lanes, trans_b=True), want)  # both


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_large_and_thread_count_independent(capability, dtype):
    rng = np.random.default_rng(11)
    threads = fastbp.get_num_threads()
    try:
        for m, n, k, ta, tb in [(515, 700, 803, False, False), (64, 3136, 576, False, False),
                                (1025, 97, 1500, True, True)]:
            a, b = operands(rng, m, n, k, ta, tb, dtype)
            results = []
            for t in (1, 2, 3):
                fastbp.set_num_threads(t)
                results.append(fastbp.matmul(a, b, trans_a=ta, trans_b=tb))
            assert_close(results[0], expected(a, b, ta, tb, 1.0, 0.0, None), k, dtype)
            assert all(np.array_equal(results[0], r) for r in results[1:])
    finally:
        fastbp.set_num_threads(threads)


def test_set_cpu_capability_rejects_unknown():
    with pytest.raises(ValueError, match="not one of"):
        _core.set_cpu_capability("sse9000")


BATCHED_SHAPES = [  # a shape, b shape: broadcast batch dims, vectors, views
    ((7, 13, 33), (7, 33, 5)), ((2, 1, 5, 9), (3, 9, 17)), ((4, 1, 31), (31, 12)),
    ((31,), (3, 31, 2)), ((6, 2, 11), (11,)), ((1, 1, 1), (5, 1, 1)), ((0, 3, 4), (4, 5)),
    ((3, 4, 0), (3, 0, 6)), ((64, 33, 17), (64, 17, 33)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_batched_matmul(capability, dtype):
    rng = np.random.default_rng(13)
    for sa, sb in BATCHED_SHAPES:
        a, b = rng.standard_normal(sa).astype(dtype), rng.standard_normal(sb).astype(dtype)
        got = fastbp.batched_matmul(a, b)
        want = a.astype(np.float64) @ b.astype(np.float64)
        assert got.dtype == dtype and got.shape == want.shape
        assert_close(got, want, sa[-1], dtype)
    # transposed and negative-stride views are read in place
    a = rng.standard_normal((5, 40, 30)).astype(dtype)
    for va, vb in [(a.transpose(0, 2, 1), a), (a[::-1, ::2], a[:, ::-1].transpose(0, 2, 1)[:, :, ::2])]:
        assert_close(fastbp.batched_matmul(va, vb), va.astype(np.float64) @ vb, va.shape[-1], dtype)


def test_batched_matmul_thread_count_independent_and_errors():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((9, 70, 90)), rng.standard_normal((9, 90, 60))
    threads = fastbp.get_num_threads()
    try:
        results = []
        for t in (1, 2, 3):
            fastbp.set_num_threads(t)
            results.append(fastbp.batched_matmul(a, b))
            results.append(fastbp.batched_matmul(a[:1], b[:1]))
    finally:
        fastbp.set_num_threads(threads)
    assert all(np.array_equal(results[i], results[i % 2]) for i in range(2, 6))
    with pytest.raises(ValueError, match=r"inner.*\(9, 70, 90\).*\(60, 90\)"):
        fastbp.batched_matmul(a, b[0].T)
    with pytest.raises(ValueError, match="broadcast"):
        fastbp.batched_matmul(a, b[:2])
    with pytest.raises(TypeError, match="float32"):
        fastbp.batched_matmul(a, b.astype(np.float32))
    with pytest.raises(ValueError, match="dimension"):
        fastbp.batched_matmul(np.float64(2.0), b)
