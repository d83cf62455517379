"""Fuzz target over the argument space of every public op of fastbp and fastbp.nn.functional.

    python tests/fuzz_ops.py [SECONDS]

Each input picks an op and a valid call (tests/strategies.py), then replaces up to three
arguments with values the op must refuse or with values of any other kind, calls it, and runs
backward through a Tensor result. Returning, or raising TypeError / ValueError (MemoryError /
OverflowError for sizes), is fine; any other exception, a crash or an input that runs longer
than PER_INPUT_SECONDS is a finding. With atheris installed the run is coverage-guided over
fastbp's Python code (libFuzzer drives hypothesis's decoder through `fuzz_one_input`); without
it, random bytes go through the same target. Findings are written to FUZZ_ARTIFACTS (default
./fuzz-artifacts) and become regression tests in tests/test_properties.py.
"""
from __future__ import annotations

import os
import signal
import sys
import time

PER_INPUT_SECONDS = 20
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import atheris
except ImportError:
    atheris = None
if os.environ.get("FUZZ_ENGINE") == "random":  # the fallback, also where atheris is installed
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["fastbp"]):
        import fastbp  # noqa: F401
        import fastbp.nn.functional  # noqa: F401

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from fastbp import Tensor  # noqa: E402
from strategies import ALLOWED_ERRORS, OPS, bad_value, call  # noqa: E402

CALLS: dict[str, int] = {}  # calls per op, reported at the end
ANY_BAD = st.sampled_from(sorted({"array", "int", "ints", "real", "flag", "choice", "dim"}))


@st.composite
def fuzz_calls(draw):
    op = OPS[draw(st.sampled_from(sorted(OPS)))]
    args, kwargs = draw(op.valid)
    replace = {}
    for name in draw(st.lists(st.sampled_from(sorted(op.args)), max_size=3, unique=True)):
        arg = op.args[name]
        if draw(st.booleans()):  # a value of this argument's kind that is invalid
            replace[name] = draw(bad_value(arg, op.numpy_level))
        else:  # a value meant for another kind of argument
            other = draw(ANY_BAD)
            replace[name] = draw(bad_value(type(arg)(other, minimum=1, n=2), op.numpy_level))
    return op, args, kwargs, replace


@settings(database=None, deadline=None, max_examples=10**9,
          suppress_health_check=list(HealthCheck))
@given(fuzz_calls())
def fuzz_one(case):
    op, args, kwargs, replace = case
    CALLS[op.name] = CALLS.get(op.name, 0) + 1
    try:
        with np.errstate(all="ignore"):
            result = call(op, args, kwargs, replace)
            if isinstance(result, tuple):
                result = result[0]
            if isinstance(result, Tensor) and result.requires_grad:
                result.sum().backward()
    except ALLOWED_ERRORS:
        pass


def _timeout(signum, frame):
    raise TimeoutError(f"one input ran longer than {PER_INPUT_SECONDS} s")


def run_random(seconds: float, artifacts: str) -> int:
    """The target on random bytes for `seconds`; a finding's bytes are written to artifacts."""
    rng = np.random.default_rng(int.from_bytes(os.urandom(8), "little"))
    signal.signal(signal.SIGALRM, _timeout)
    end, runs = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        data = rng.integers(0, 256, int(rng.integers(8, 4096)), dtype=np.uint8).tobytes()
        signal.alarm(PER_INPUT_SECONDS)
        try:
            fuzz_one.hypothesis.fuzz_one_input(data)
        except BaseException:
            os.makedirs(artifacts, exist_ok=True)
            path = os.path.join(artifacts, f"crash-{runs}")
            with open(path, "wb") as f:
                f.write(data)
            print(f"fuzz: finding after {runs} inputs, input written to {path}", flush=True)
            raise
        finally:
            signal.alarm(0)
        runs += 1
    print(f"fuzz: {runs} inputs in {seconds:.0f} s, {sum(CALLS.values())} calls over "
          f"{len(CALLS)} ops, no finding", flush=True)
    return runs


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    artifacts = os.environ.get("FUZZ_ARTIFACTS", "fuzz-artifacts")
    if atheris is None:
        print("fuzz: random inputs (atheris not installed or FUZZ_ENGINE=random)")
        run_random(seconds, artifacts)
        return
    os.makedirs(artifacts, exist_ok=True)
    argv = [sys.argv[0], f"-max_total_time={int(seconds)}", f"-timeout={PER_INPUT_SECONDS}",
            f"-artifact_prefix={artifacts}/", "-print_final_stats=1", "-rss_limit_mb=8192",
            "-max_len=8192", "-len_control=0"]  # a whole call takes a few hundred bytes
    atheris.Setup(argv, fuzz_one.hypothesis.fuzz_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
