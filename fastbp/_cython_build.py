"""Compiling a Cython source into a module on demand (Cython + setuptools + the C compiler
Python was built with), for the Cython benchmark peer and the tests of fastbp.cython_api."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings


class CythonUnavailable(RuntimeError):
    """Cython, setuptools or a C compiler is missing, so nothing can be compiled here."""


def missing_tools():
    """Why Cython sources cannot be compiled here, or None when they can."""
    for module, name in (("Cython", "Cython"), ("setuptools", "setuptools")):
        if importlib.util.find_spec(module) is None:
            return f"{name} is not installed"
    if sys.platform == "win32":
        return None  # setuptools finds MSVC itself
    # the compiler setuptools will call: $CC, else the one Python was built with
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    try:
        ok = subprocess.run([compiler, "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return None if ok else f"no working C compiler ({compiler!r} does not run)"


def build_module(source, name, build_dir):
    """Compile the .pyx file `source` into an extension module `name`, import and return it.

    The module lands in a folder of build_dir named after a hash of the source, Cython's version
    and the Python ABI, so a second call with the same inputs imports it without compiling.
    Raises CythonUnavailable when the tools are missing; compile errors propagate.
    """
    reason = missing_tools()
    if reason:
        raise CythonUnavailable(reason)
    import Cython
    with open(source, "rb") as f:
        text = f.read()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    key = hashlib.sha256(b"\0".join([text, Cython.__version__.encode(), suffix.encode()]))
    target_dir = os.path.join(os.fspath(build_dir), f"{name}-{key.hexdigest()[:16]}")
    target = os.path.join(target_dir, name + suffix)
    if not os.path.exists(target):
        os.makedirs(target_dir, exist_ok=True)
        work = tempfile.mkdtemp(prefix="build-", dir=target_dir)
        try:
            built = _compile(text, name, work)
            os.replace(built, target)  # atomic: a concurrent build of the same inputs is harmless
        finally:
            shutil.rmtree(work, ignore_errors=True)
    spec = importlib.util.spec_from_file_location(name, target)
    assert spec is not None and spec.loader is not None  # a file with the extension suffix
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(text, name, work):
    pyx = os.path.join(work, name + ".pyx")
    with open(pyx, "wb") as f:
        f.write(text)
    with warnings.catch_warnings():  # setuptools' deprecation notices are not ours to fix
        warnings.simplefilter("ignore")
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension

        flags = [] if sys.platform == "win32" else ["-O3"]
        ext = Extension(name, [pyx], extra_compile_args=flags)
        modules = cythonize([ext], quiet=True, compiler_directives={"language_level": 3})
        dist = Distribution({"name": name, "ext_modules": modules})
        dist.verbose = 0
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib = cmd.build_temp = work
        cmd.ensure_finalized()
        cmd.run()
        return cmd.get_ext_fullpath(name)
