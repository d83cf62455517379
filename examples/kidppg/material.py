"""The KID-PPG material, read straight out of the authors' wheel `kid-ppg` 0.0.4 (a zip).

The wheel pins Python 3.10.8 and TensorFlow, so it is never installed: `find_wheel` takes a
path or downloads the wheel once into a cache folder with pip, and the two files used here are
read from the zip. The package is GPL-3.0; fastbp ships none of its files, it reads them at run
time. The demo recording is a pickle, so it goes through an unpickler that can build numpy
arrays and nothing else; the weights are Keras HDF5, read with h5py (no TensorFlow).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PIP_SPEC = "kid-ppg==0.0.4"
WHEEL_NAME = "kid_ppg-0.0.4-py3-none-any.whl"
DEMO_MEMBER = "kid_ppg/demo/demo_data/PPGDalia_S6_stairs.pkl"
WEIGHTS_MEMBER = "kid_ppg/model_weights/kid_ppg_weights.h5"
# SHA-256 of the two files, as the wheel's RECORD lists them: a different file is refused
MEMBER_SHA256 = {
    DEMO_MEMBER: "wAePYspbFLw0UcL2O4TegTqsLma0JP7iSXsRgMeA4kw",
    WEIGHTS_MEMBER: "XS_h-61sCfO0VKAOQtfL7zVY0vCxSPuhf2Y7kyLGkFQ",
}


class MaterialError(RuntimeError):
    """The wheel cannot be had, or is not the published one."""


def default_cache_dir() -> Path:
    """$FASTBP_CACHE_DIR, else $XDG_CACHE_HOME/fastbp, else ~/.cache/fastbp; then kid-ppg/."""
    root = os.environ.get("FASTBP_CACHE_DIR")
    if root:
        return Path(root) / "kid-ppg"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastbp" / "kid-ppg"


def find_wheel(wheel=None, cache_dir=None, download: bool = True) -> Path:
    """The wheel at `wheel` if given; else the one in `cache_dir`, downloaded there with pip
    (`pip download kid-ppg==0.0.4 --no-deps --only-binary=:all: --python-version 3.10.8`)."""
    if wheel is not None:
        path = Path(wheel)
        if not path.is_file():
            raise FileNotFoundError(f"--wheel {path}: no such file")
        return path
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / WHEEL_NAME
    if path.is_file():
        return path
    if not download:
        raise MaterialError(f"{WHEEL_NAME} is not in {cache} and downloading is off")
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", PIP_SPEC, "--no-deps",
               "--only-binary=:all:", "--python-version", "3.10.8", "-d", str(cache)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MaterialError(f"could not run {' '.join(command)}: {exc}") from exc
    if done.returncode != 0 or not path.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise MaterialError(f"{' '.join(command)} failed (exit {done.returncode}): "
                            + " / ".join(tail))
    return path


def read_member(wheel, member: str) -> bytes:
    """One file of the wheel, checked against the SHA-256 pinned for it."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(member)
    except KeyError:
        raise MaterialError(f"{wheel} has no {member}: is it the kid-ppg 0.0.4 wheel?") from None
    except zipfile.BadZipFile as exc:
        raise MaterialError(f"{wheel} is not a wheel (zip): {exc}") from None
    expected = MEMBER_SHA256.get(member)
    if expected is not None:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if digest != expected:
            raise MaterialError(f"{member} in {wheel} has SHA-256 {digest}, expected {expected} "
                                f"(the file published in kid-ppg 0.0.4)")
    return data


# --- the demo recording: a pickle of a dict of numpy arrays -------------------------------------
def _array_from_buffer(buffer, dtype, shape, order):
    """What numpy's pickles (protocol 5) call to rebuild an array, for plain numeric dtypes only:
    an object dtype here would turn raw bytes into pointers."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.kind not in "biufc":
        raise pickle.UnpicklingError(f"pickle asks for an array of dtype {dtype!r}; only "
                                     f"bool, integer, float and complex arrays are allowed")
    if order not in ("C", "F") or not isinstance(shape, tuple) or not all(
            isinstance(n, int) and n >= 0 for n in shape):
        raise pickle.UnpicklingError(f"pickle asks for an array of shape {shape!r}, order "
                                     f"{order!r}")
    try:
        return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"array data do not fit shape {shape} of {dtype}: {exc}") \
            from None


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, tuples, numbers, strings and numeric numpy arrays; any other
    global the pickle names (a function to call, a class to build) is an UnpicklingError."""

    ALLOWED = {
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.numeric", "_frombuffer"): _array_from_buffer,   # numpy 1.x pickles
        ("numpy._core.numeric", "_frombuffer"): _array_from_buffer,  # numpy 2.x pickles
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: this loader builds numpy arrays only "
                f"(allowed: {', '.join('.'.join(k) for k in self.ALLOWED)})") from None


def load_array_dict(data: bytes) -> dict:
    """A pickled dict of str -> numeric ndarray, through NumpyOnlyUnpickler."""
    obj = NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()):
        raise pickle.UnpicklingError(f"expected a dict of str -> numpy array, got "
                                     f"{type(obj).__name__}")
    return obj


def load_demo(wheel):
    """The PPG-DaLiA S6 stairs windows: X (215, 4, 256) float64 (wrist PPG, acc x, y, z; 8 s at
    32 Hz, shifted by 2 s) and y (215,) float64, the ECG heart rate in bpm."""
    arrays = load_array_dict(read_member(wheel, DEMO_MEMBER))
    if "X" not in arrays or "y" not in arrays:
        raise MaterialError(f"{DEMO_MEMBER} has keys {sorted(arrays)}, expected X and y")
    x, y = arrays["X"], arrays["y"].reshape(-1)
    if x.ndim != 3 or x.shape[1:] != (4, 256) or len(y) != len(x):
        raise MaterialError(f"{DEMO_MEMBER}: X has shape {x.shape} and y {arrays['y'].shape}, "
                            f"expected (N, 4, 256) and (N, 1)")
    return np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)


# --- the weights: Keras HDF5 --------------------------------------------------------------------
@dataclass
class KerasLayer:
    name: str          # the layer's name in the file, e.g. 'dense_26'
    class_name: str    # Keras class, from the file's model_config, e.g. 'Dense'
    weights: list      # [(weight name, ndarray)] in the file's order, e.g. ('dense_26/kernel:0', ...)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_keras_h5(data: bytes) -> list:
    """The layers of a Keras HDF5 model file (model.save / save_weights with model_config), in
    the model's order, each with its weights as numpy arrays."""
    try:
        import h5py
    except ImportError:
        raise MaterialError("reading the Keras weights needs h5py: pip install h5py") from None
    with h5py.File(io.BytesIO(data), "r") as f:
        if "model_config" not in f.attrs:
            raise MaterialError("the Keras file has no model_config, so layer types are unknown")
        config = json.loads(_text(f.attrs["model_config"]))
        classes = {layer["name"]: layer["class_name"] for layer in config["config"]["layers"]}
        group = f["model_weights"] if "model_weights" in f else f
        layers = []
        for name in (_text(n) for n in group.attrs["layer_names"]):
            names = [_text(n) for n in group[name].attrs["weight_names"]]
            weights = [(w, np.array(group[name][w])) for w in names]
            layers.append(KerasLayer(name, classes.get(name, "?"), weights))
    return layers
