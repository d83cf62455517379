"""What a trustworthy numerical library keeps under stress: the same bits from concurrent Python
threads, the GIL released while computing, workers started by fork / spawn / forkserver after
threaded use, flat memory over thousands of calls (also calls that raise), MemoryError when an
allocation fails, peace with torch's OpenMP and numpy's OpenBLAS in either import order, and
huge sizes refused before anything is allocated."""
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastbp
import fastbp.nn.functional as F
from fastbp import Tensor, nn
from mp_worker import conv_and_matmul

rng = np.random.default_rng(11)
# Under AddressSanitizer (.ci/sanitize) freed memory sits in a quarantine and every mapping has
# shadow memory: resident size and address-space limits measure ASan, not fastbp.
def _under_asan() -> bool:
    if not os.path.exists("/proc/self/maps"):
        return False
    with open("/proc/self/maps") as maps:
        return "libasan" in maps.read()


UNDER_ASAN = _under_asan()


def _r(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _calls(scale=1):
    """One call of every numpy-level op, odd shapes."""
    x, w, b = _r(3, 7 * scale, 19, 17), _r(9 * scale, 7 * scale, 3, 3), _r(9 * scale)
    gy = _r(3, 9 * scale, 19, 17)
    x1, w1, gy1 = _r(3, 7 * scale, 61), _r(9 * scale, 7 * scale, 5), _r(3, 9 * scale, 61)
    xl, wl, gl = _r(37 * scale, 130), _r(65, 130), _r(37 * scale, 65)
    a, bm = _r(97 * scale, 83), _r(83, 101)
    xt, wt = _r(2, 9 * scale, 11, 13), _r(9 * scale, 5, 3, 3)
    gt = _r(2, 5, 24, 28)
    return {
        "conv2d": lambda: fastbp.conv2d(x, w, b, padding=1),
        "conv2d_backward": lambda: fastbp.conv2d_backward(gy, x, w, padding=1),
        "conv1d": lambda: fastbp.conv1d(x1, w1, padding="same"),
        "conv1d_backward": lambda: fastbp.conv1d_backward(gy1, x1, w1, padding="same"),
        "linear": lambda: fastbp.linear(xl, wl),
        "linear_backward": lambda: fastbp.linear_backward(gl, xl, wl),
        "matmul": lambda: fastbp.matmul(a, bm, alpha=0.5),
        "batched_matmul": lambda: fastbp.batched_matmul(a.reshape(-1, 1, 83)[:6], bm),
        "conv_transpose2d": lambda: fastbp.conv_transpose2d(xt, wt, stride=2, output_padding=1),
        "conv_transpose2d_backward": lambda: fastbp.conv_transpose2d_backward(
            gt, xt, wt, stride=2, output_padding=1),
    }


def _same(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    return all(np.array_equal(g, w) for g, w in zip(got, want))


@pytest.fixture
def two_threads():
    saved = fastbp.get_num_threads()
    fastbp.set_num_threads(2)
    yield
    fastbp.set_num_threads(saved)


# --- threads ------------------------------------------------------------------------------------
def test_concurrent_python_threads_give_the_same_bits(two_threads):
    calls = _calls()
    serial = {name: fn() for name, fn in calls.items()}
    work = list(calls.items()) * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda item: (item[0], item[1]()), work))
    for name, got in results:
        assert _same(got, serial[name]), f"{name} from concurrent threads differs"


def _runs_while(fn, seconds=0.05):
    """How often another Python thread ran while fn() computed: it records times in a loop."""
    stamps, stop = [], threading.Event()

    def spin():
        while not stop.is_set():
            stamps.append(time.perf_counter())
    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.01)
    t0 = time.perf_counter()
    fn()
    t1 = time.perf_counter()
    stop.set()
    spinner.join()
    inside = [t for t in stamps if t0 + 0.1 * (t1 - t0) < t < t1 - 0.1 * (t1 - t0)]
    return len(inside), t1 - t0


def _long_calls():
    """Every numpy-level op on shapes that take tens of milliseconds on one core."""
    x, w, gy = _r(8, 64, 48, 48), _r(64, 64, 3, 3), _r(8, 64, 48, 48)
    x1, w1, gy1 = _r(16, 64, 2048), _r(64, 64, 9), _r(16, 64, 2048)
    xl, wl, gl = _r(2048, 1024), _r(1024, 1024), _r(2048, 1024)
    a, bm = _r(1024, 1024), _r(32, 256, 256)
    xt, wt, gt = _r(8, 128, 32, 32), _r(128, 64, 3, 3), _r(8, 64, 65, 65)
    return {
        "conv2d": lambda: fastbp.conv2d(x, w, padding=1),
        "conv2d_backward": lambda: fastbp.conv2d_backward(gy, x, w, padding=1),
        "conv1d": lambda: fastbp.conv1d(x1, w1, padding=4),
        "conv1d_backward": lambda: fastbp.conv1d_backward(gy1, x1, w1, padding=4),
        "linear": lambda: fastbp.linear(xl, wl),
        "linear_backward": lambda: fastbp.linear_backward(gl, xl, wl),
        "matmul": lambda: fastbp.matmul(a, a),
        "batched_matmul": lambda: fastbp.batched_matmul(bm, bm),
        "conv_transpose2d": lambda: fastbp.conv_transpose2d(xt, wt, stride=2),
        "conv_transpose2d_backward": lambda: fastbp.conv_transpose2d_backward(gt, xt, wt, stride=2),
    }


def test_gil_is_released_while_computing():
    """With a 1 ms switch interval, an op that held the GIL for tens of milliseconds would let
    the other thread in a few times at most; released, the other thread runs all along."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    calls = _long_calls()
    try:
        with fastbp.threads(1):
            for name, fn in calls.items():
                count, took = 0, 0.0
                for _ in range(3):  # a noisy machine may starve the other thread once
                    count, took = _runs_while(fn)
                    if count > 50:
                        break
                assert count > 50 or took < 0.01, \
                    f"{name}: other thread ran {count} times in {took * 1e3:.0f} ms"
    finally:
        sys.setswitchinterval(old)


# --- fork, spawn, forkserver --------------------------------------------------------------------
def _expected(seed):
    return conv_and_matmul(("parent", seed))[1:]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_workers_after_threaded_use(method, two_threads):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    for fn in _calls().values():  # the parent's OpenMP pool is up and has worked
        fn()
    ctx = multiprocessing.get_context(method)
    tasks = [(method, seed) for seed in range(4)]
    with ctx.Pool(2) as pool:
        pending = pool.map_async(conv_and_matmul, tasks)
        results = pending.get(timeout=120)  # a hang fails here instead of blocking CI
    for (_, seed), (_, *got) in zip(tasks, results):
        assert all(np.array_equal(g, w) for g, w in zip(got, _expected(seed)))


# --- memory -------------------------------------------------------------------------------------
def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _raising_calls():
    x, w = np.ones((2, 4, 7, 9)), np.ones((6, 4, 3, 3))
    return [
        lambda: fastbp.conv2d(x, np.ones((6, 5, 3, 3))),
        lambda: fastbp.conv2d(x.astype(np.float32), w),
        lambda: fastbp.conv2d(x, w, padding=2**62),
        lambda: fastbp.conv1d_backward(np.ones((2, 6, 8)), np.ones((2, 4, 9)), np.ones((6, 4, 3))),
        lambda: fastbp.linear(np.ones((3, 5)), np.ones((4, 6))),
        lambda: fastbp.linear([[1.0, 2.0], [3.0]], np.ones((4, 2))),
        lambda: fastbp.matmul(np.ones((3, 4)), np.ones((5, 6))),
        lambda: fastbp.conv_transpose2d(x, w, groups=3),
        lambda: F.relu(None),
        lambda: F.max_pool2d(Tensor(x), 2, padding=3),
        lambda: nn.Linear(3, 4)(Tensor(np.ones((2, 5), np.float32))),
    ]


def _training_step(model, x, y):
    loss = F.mse_loss(model(x), y)
    loss.backward()
    model.zero_grad()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif(UNDER_ASAN, reason="ASan's quarantine holds freed memory")
def test_memory_stays_flat_over_thousands_of_calls():
    calls = list(_calls().values())
    bad = _raising_calls()
    model = nn.Sequential(nn.Conv1d(3, 5, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 17, 1))
    x, y = Tensor(_r(4, 3, 17)), Tensor(_r(4, 1))

    def round_():
        for fn in calls:
            fn()
        for fn in bad:
            try:
                fn()
            except (TypeError, ValueError, MemoryError, OverflowError):
                pass
        _training_step(model, x, y)

    for _ in range(100):  # warm up: allocator pools, caches, thread pools
        round_()
    before = _rss_bytes()
    for _ in range(400):  # 400 rounds x 22 calls
        round_()
    grown = _rss_bytes() - before
    assert grown < 16 * 2**20, f"resident memory grew by {grown / 2**20:.1f} MiB"


ALLOCATION_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import fastbp
    from fastbp import Tensor
    import fastbp.nn.functional as F

    r = np.random.default_rng(0)
    x = r.standard_normal((8, 64, 64, 64)).astype(np.float32)    # 8 MiB
    w = r.standard_normal((64, 64, 3, 3)).astype(np.float32)
    xl, wl = r.standard_normal((4096, 512)).astype(np.float32), r.standard_normal((512, 512)).astype(np.float32)
    calls = [
        lambda: fastbp.conv2d(x, w, padding=1),
        lambda: fastbp.conv2d_backward(x, x, w, padding=1),
        lambda: fastbp.conv2d(x, w[:, :1], groups=64, padding=1),
        lambda: fastbp.conv1d(x[:, :, 0], w[:, :, 0], padding=1),
        lambda: fastbp.linear_backward(xl, xl, wl),
        lambda: fastbp.matmul(xl, wl),
        lambda: fastbp.batched_matmul(x[:, :4], x[:, :4]),
        lambda: fastbp.conv_transpose2d(x[:, :, :16, :16], w, stride=2),
        lambda: F.conv2d(Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)).sum().backward(),
    ]
    for fn in calls:  # OpenMP's threads exist before the limit: their stacks are not the test
        fn()
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    margin = int(sys.argv[1]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (used + margin, resource.RLIM_INFINITY))
    outcomes = []
    for fn in calls:
        try:
            fn()
            outcomes.append("ok")
        except MemoryError:
            outcomes.append("MemoryError")
    print(" ".join(outcomes))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS semantics")
@pytest.mark.skipif(UNDER_ASAN, reason="ASan's shadow memory needs the address space")
@pytest.mark.parametrize("margin_mib", [0, 1, 4, 16, 24])
def test_failed_allocation_is_memory_error(margin_mib):
    """Under an address-space limit every op returns or raises MemoryError; none aborts. The
    margins fail different allocations: outputs, packing and column buffers, autograd's."""
    # every large block is a fresh mapping (glibc would otherwise reuse freed heap memory)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run([sys.executable, "-c", ALLOCATION_SCRIPT, str(margin_mib)],
                         capture_output=True, text=True, timeout=300, env=env,
                         cwd=os.path.dirname(sys.executable))
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    outcomes = out.stdout.split()
    assert len(outcomes) == 9 and set(outcomes) <= {"ok", "MemoryError"}, out.stdout
    if margin_mib == 0:  # no new mapping can be made: every op fails to allocate
        assert set(outcomes) == {"MemoryError"}, out.stdout


# --- huge sizes: refused before anything is allocated -------------------------------------------
HUGE = 2**30  # a zero-stride (HUGE, n) view costs no memory

HUGE_CALLS = {
    "conv2d-padding": lambda: fastbp.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1)), padding=2**40),
    "conv2d-batch": lambda: fastbp.conv2d(np.broadcast_to(1.0, (HUGE, 1, HUGE, 4)), np.ones((1, 1, 1, 1))),
    "conv1d_backward-padding": lambda: fastbp.conv1d_backward(
        np.ones((1, 1, 5)), np.ones((1, 1, 3)), np.ones((1, 1, 1)), padding=2**61),
    "linear": lambda: fastbp.linear(np.broadcast_to(1.0, (HUGE, 2)), np.broadcast_to(1.0, (HUGE, 2))),
    "matmul": lambda: fastbp.matmul(np.broadcast_to(1.0, (HUGE, 1)), np.broadcast_to(1.0, (1, HUGE))),
    "batched_matmul": lambda: fastbp.batched_matmul(np.broadcast_to(1.0, (HUGE, 4, 1)),
                                                    np.broadcast_to(1.0, (1, HUGE))),
    "conv_transpose2d": lambda: fastbp.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 1, 1)),
                                                        stride=2**40),
    "F.pad": lambda: F.pad(Tensor(np.ones((2, 2))), (2**40, 2**40, 2**40, 2**40)),
    "F.adaptive_avg_pool2d": lambda: F.adaptive_avg_pool2d(Tensor(np.ones((1, 1, 2, 2))), (2**31, 2**31)),
}


@pytest.mark.parametrize("name", sorted(HUGE_CALLS))
def test_huge_sizes_fail_before_allocating(name):
    tracemalloc.start()  # numpy reports its allocations to tracemalloc
    try:
        with pytest.raises((ValueError, OverflowError, MemoryError)):
            HUGE_CALLS[name]()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{name} allocated {peak} bytes before failing"


# --- torch's OpenMP and numpy's OpenBLAS in the same process ------------------------------------
COEXIST_SCRIPT = textwrap.dedent("""
    import os, sys, time
    first = sys.argv[1]
    if first == "torch":
        import torch
        import fastbp
    else:
        import fastbp
        import torch
    import numpy as np
    r = np.random.default_rng(0)
    x, w = r.standard_normal((4, 16, 24, 24)).astype(np.float32), r.standard_normal((16, 16, 3, 3)).astype(np.float32)
    a = r.standard_normal((300, 300))
    cores = os.cpu_count()
    assert fastbp.get_num_threads() <= cores and torch.get_num_threads() <= cores
    y = fastbp.conv2d(x, w, padding=1)
    ty = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    assert np.abs(y - ty).max() < 1e-3
    np.save(sys.argv[2], np.concatenate([y.ravel(), fastbp.matmul(a, a).ravel()]))
    # interleaved use, then fastbp alone: its CPU time may not exceed its own threads' share,
    # so no other runtime's threads spin on the cores while fastbp computes
    threads = fastbp.get_num_threads()
    for _ in range(20):
        torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
        a @ a
        fastbp.conv2d(x, w, padding=1)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - wall0 < 0.5:
        fastbp.conv2d(x, w, padding=1)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(threads, cpu / wall)
""")


@pytest.mark.parametrize("first", ["torch", "fastbp"])
def test_coexists_with_torch_and_openblas(first, tmp_path):
    pytest.importorskip("torch")
    r = np.random.default_rng(0)  # the script's inputs
    x, w = (r.standard_normal(s).astype(np.float32) for s in ((4, 16, 24, 24), (16, 16, 3, 3)))
    reference = fastbp.conv2d(x, w, padding=1).ravel()
    out = subprocess.run([sys.executable, "-c", COEXIST_SCRIPT, first, str(tmp_path / "r.npy")],
                         capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(sys.executable))
    assert out.returncode == 0, out.stderr[-3000:]
    threads, load = out.stdout.split()
    assert float(load) <= int(threads) + 0.5, f"{load} cores busy while fastbp used {threads}"
    got = np.load(tmp_path / "r.npy")
    assert np.array_equal(got[:reference.size], reference)  # the same bits as without torch
