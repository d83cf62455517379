"""The Cython im2col benchmark peer (fastbp._cython_peer) against fastbp.reference."""
import numpy as np
import pytest

from fastbp import _cython_build, _cython_peer, reference

CASES = [  # x shape, weight shape, stride, padding
    ((2, 3, 11, 9), (5, 3, 3, 2), (1, 2), (1, 0)),
    ((3, 4, 7, 13), (6, 4, 5, 3), 2, 2),
    ((1, 1, 5, 5), (2, 1, 1, 1), 1, 0),
    ((4, 6, 37), (9, 6, 5), 2, 2),  # 1-d
]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    reason = _cython_build.missing_tools()
    if reason:
        pytest.skip(f"the Cython peer cannot be compiled here: {reason}")
    return tmp_path_factory.mktemp("cython-peer")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_reference(build_dir, case, dtype):
    xs, ws, s, p = CASES[case]
    rng = np.random.default_rng(case)
    x, w, b = (rng.standard_normal(sh).astype(dtype) for sh in (xs, ws, ws[:1]))
    conv, conv_bwd = ((reference.conv1d, reference.conv1d_backward) if len(xs) == 3
                      else (reference.conv2d, reference.conv2d_backward))
    want = conv(x, w, b, stride=s, padding=p)
    dy = rng.standard_normal(want.shape).astype(dtype)
    forward, backward = _cython_peer.conv_fns(x, w, b, dy, stride=s, padding=p, build_dir=build_dir)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    got = forward()
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, **tol)
    for g, r in zip(backward(), conv_bwd(dy, x, w, stride=s, padding=p)):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, **tol)


def test_rejects_groups(build_dir):
    x, w = np.zeros((1, 4, 5, 5), np.float32), np.zeros((2, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="groups"):
        _cython_peer.conv_fns(x, w, None, np.zeros((1, 2, 3, 3), np.float32), build_dir=build_dir)
