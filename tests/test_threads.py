"""Thread count: fastbp.threads blocks, OMP_NUM_THREADS at import, threadpoolctl's limits."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastbp


def test_threads_block_sets_and_restores():
    before = fastbp.get_num_threads()
    with fastbp.threads(1):
        assert fastbp.get_num_threads() == 1
        with fastbp.threads(3):
            assert fastbp.get_num_threads() == 3
        assert fastbp.get_num_threads() == 1
    assert fastbp.get_num_threads() == before


def test_threads_block_restores_after_an_error():
    before = fastbp.get_num_threads()
    with pytest.raises(RuntimeError):
        with fastbp.threads(1):
            raise RuntimeError("boom")
    assert fastbp.get_num_threads() == before


def test_threads_block_is_per_thread():
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def other():
        inside.wait(10)
        seen["other"] = fastbp.get_num_threads()
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with fastbp.threads(1):
        inside.set()
        done.wait(10)
    t.join()
    if fastbp.get_num_threads() > 1:
        assert seen["other"] == fastbp.get_num_threads()


def test_threads_block_results_are_identical():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7, 19, 17)).astype(np.float32)
    w = rng.standard_normal((9, 7, 3, 3)).astype(np.float32)
    with fastbp.threads(1):
        one = fastbp.conv2d(x, w, padding=1)
    with fastbp.threads(2):
        two = fastbp.conv2d(x, w, padding=1)
    assert np.array_equal(one, two)


@pytest.mark.parametrize("bad", [0, -1, 10**6])
def test_threads_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="threads"):
        with fastbp.threads(bad):
            pass
    with pytest.raises(TypeError, match="threads"):
        with fastbp.threads(1.5):
            pass


@pytest.mark.parametrize("count", ["1", "3"])
def test_omp_num_threads_is_respected_at_import(count):
    if not fastbp._core.has_openmp():
        pytest.skip("single-threaded build")
    env = dict(os.environ, OMP_NUM_THREADS=count)
    out = subprocess.run([sys.executable, "-c", "import fastbp; print(fastbp.get_num_threads())"],
                         capture_output=True, text=True, env=env, cwd=os.path.dirname(sys.executable),
                         timeout=60)
    assert out.stdout.strip() == count, out.stderr


def test_threadpoolctl_sees_and_limits_fastbp():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not fastbp._core.has_openmp():
        pytest.skip("single-threaded build")
    saved = fastbp.get_num_threads()
    fastbp.set_num_threads(2)
    try:
        _check_threadpoolctl(threadpoolctl)
    finally:
        fastbp.set_num_threads(saved)


def _check_threadpoolctl(threadpoolctl):
    ours = os.path.realpath(fastbp.show_config(mode="dicts")["openmp"]["library"])
    pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"]
    assert ours in [os.path.realpath(p["filepath"]) for p in pools]
    with threadpoolctl.threadpool_limits(1):
        assert fastbp.get_num_threads() == 1
        rng = np.random.default_rng(1)
        a = rng.standard_normal((70, 50))
        assert np.allclose(fastbp.matmul(a, a.T), a @ a.T)
    assert fastbp.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastbp.get_num_threads() == 1
    assert fastbp.get_num_threads() == 2
