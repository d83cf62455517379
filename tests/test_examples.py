"""Smoke tests: each example runs end to end on a tiny setting and prints its summary line."""
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args):
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, timeout=300, cwd=EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_train_digits_quick():
    pytest.importorskip("sklearn")
    out = run_example("train_digits.py", "--quick", "--epochs", "1")
    assert "epoch  1" in out and "final test accuracy" in out


def test_train_digits_resnet_quick():
    pytest.importorskip("sklearn")
    out = run_example("train_digits.py", "--model", "resnet", "--quick", "--epochs", "1")
    assert "epoch  1" in out and "final test accuracy" in out


def test_ppg_heart_rate_quick():
    out = run_example("ppg_heart_rate.py", "--quick", "--epochs", "1")
    assert "epoch  1" in out and "test MAE: CNN" in out and "spectral-peak baseline" in out
    assert "real PPG-DaLiA S6 stairs (215 windows) MAE: CNN" in out or "unavailable" in out
