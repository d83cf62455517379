"""fastbp.save / fastbp.load: state_dicts as numpy .npz files, never pickle."""
from __future__ import annotations

import zipfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]


def save(state_dict, path) -> None:
    """Write a mapping of str -> array (numpy arrays, fastbp Tensors, numbers) to path as an
    .npz archive; keys, order, shapes and dtypes survive load(). Object arrays are refused."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save: expected a mapping of names to arrays (a state_dict), got "
                        f"{type(state_dict).__name__}")
    arrays = OrderedDict()
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"save: keys must be str, got {key!r}")
        if isinstance(value, Tensor):
            value = value.data
        elif hasattr(value, "detach"):
            value = value.detach().cpu().numpy()  # a torch tensor
        if not isinstance(value, (np.ndarray, np.generic, int, float, bool)):
            raise TypeError(f"save: value of {key!r} is a {type(value).__name__}; only arrays, "
                            f"Tensors and numbers can be saved")
        value = np.asarray(value)
        if value.dtype.hasobject:
            raise TypeError(f"save: value of {key!r} has dtype object, which would need pickle")
        arrays[key] = value
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, value in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, value, allow_pickle=False)


def load(path) -> OrderedDict:
    """Read what save() wrote: an OrderedDict of str -> numpy array, in the saved order."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"load: {path!s} is not a fastbp checkpoint (an .npz archive of "
                         f"arrays): {e}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {path!s} holds a single array, not a fastbp checkpoint "
                         f"(an .npz archive of arrays)")
    with archive:
        try:
            return OrderedDict((key, archive[key]) for key in archive.files)
        except ValueError as e:
            raise ValueError(f"load: {path!s} has an entry that is not a plain array: {e}") from None
