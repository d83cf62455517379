"""A multiprocessing worker for tests/test_robustness.py, in a module of its own so that spawn
and forkserver children can import it (they get the parent's sys.path, with tests/ on it)."""
import numpy as np


def conv_and_matmul(task):
    name, seed = task
    import fastbp  # spawn and forkserver workers import it afresh
    r = np.random.default_rng(seed)
    x, w = r.standard_normal((2, 5, 13, 11)), r.standard_normal((7, 5, 3, 3))
    a = r.standard_normal((67, 45))
    return (name, fastbp.conv2d(x, w, padding=1),
            fastbp.conv2d_backward(np.ones((2, 7, 13, 11)), x, w, padding=1)[1], fastbp.matmul(a, a.T))
