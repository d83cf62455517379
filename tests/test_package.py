"""fastbp as an installed package: version, configuration report, the `fastbp` command, and the
ImportError a source tree without its compiled module gives."""
import importlib.metadata
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import fastbp

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_cli(*args, cwd=None):
    """The `fastbp` console command of this environment (python -m fastbp when not on PATH)."""
    exe = shutil.which("fastbp", path=os.path.dirname(sys.executable))
    cmd = [exe, *args] if exe else [sys.executable, "-m", "fastbp", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          cwd=cwd or os.path.dirname(sys.executable))


def test_one_version_everywhere():
    assert fastbp.__version__ == importlib.metadata.version("fastbp")
    assert fastbp.__version__ == fastbp._core.__version__
    assert fastbp.show_config(mode="dicts")["fastbp"]["version"] == fastbp.__version__


def test_license_ships_with_the_package():
    files = importlib.metadata.files("fastbp") or []
    assert any(f.name == "LICENSE" for f in files)
    assert importlib.metadata.metadata("fastbp")["License-Expression"] == "MIT"


def test_show_config_reports_the_build_and_runtime(capsys):
    fastbp.show_config()
    out = capsys.readouterr().out
    for field in ("fastbp " + fastbp.__version__, "numpy:", "compiler:", "flags:", "openmp:",
                  "threads:", "cpu paths:", fastbp.cpu_capability()):
        assert field in out
    c = fastbp.show_config(mode="dicts")
    assert c["threads"] == fastbp.get_num_threads()
    assert c["cpu"]["in_use"] == fastbp.cpu_capability()
    assert c["cpu"]["alu_on_fma_ports"] == fastbp._core.alu_on_fma_ports()
    assert fastbp.cpu_capability() in c["cpu"]["capabilities"]
    assert c["build"]["compiler"] and c["build"]["cxx_flags"]
    if fastbp._core.has_openmp():
        assert c["openmp"]["enabled"] and c["openmp"]["version"].startswith("OpenMP")
        assert c["openmp"]["library"] and os.path.exists(c["openmp"]["library"])
    with pytest.raises(ValueError, match="mode"):
        fastbp.show_config(mode="yaml")


def test_config_command():
    result = run_cli("config")
    assert result.returncode == 0, result.stderr
    assert "fastbp " + fastbp.__version__ in result.stdout and "openmp:" in result.stdout
    result = run_cli("config", "--json")
    assert json.loads(result.stdout)["fastbp"]["version"] == fastbp.__version__


def test_bench_command_writes_json_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    result = run_cli("bench", "--quick", "--only", "conv:ppg-c1,linear:gemv",
                     "--json", str(out_json), "--plot", str(out_png))
    assert result.returncode == 0, result.stderr
    data = json.loads(out_json.read_text())
    assert [r["name"] for r in data["rows"]] == ["conv:ppg-c1"] * 2 + ["linear:gemv"] * 2
    assert all(r["max_rel_err"] < 1e-4 for r in data["rows"])
    assert data["command"].startswith("fastbp bench") and data["date"] and data["machine"]["cpu"]
    assert "numpy" in data["rows"][0]["peers"]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "time ratio" in result.stdout


def test_bench_with_a_forward_only_peer():
    """With ONNX Runtime the only peer asked for, backward rows have no peer: fastbp is timed
    alone and the report says '-' for the peer."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    result = run_cli("bench", "--quick", "--only", "conv:tiny", "--peers", "onnxruntime")
    assert result.returncode == 0, result.stderr
    backward = [line for line in result.stdout.splitlines()
                if line.startswith("conv:tiny") and "backward" in line]
    assert len(backward) == 1 and " - " in backward[0], result.stdout


def test_bench_command_rejects_unknown_layers():
    result = run_cli("bench", "--only", "conv:nope")
    assert result.returncode == 2 and "conv:nope" in result.stderr


def test_source_tree_import_error_says_what_to_do():
    source = ROOT / "fastbp"
    if not (source / "__init__.py").exists() or any(source.glob("_core*.so")):
        pytest.skip("no source tree without a compiled module next to the tests")
    result = subprocess.run([sys.executable, "-c", "import fastbp"], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode != 0
    assert "source tree without its compiled module" in result.stderr
    assert "pip install" in result.stderr and "circular import" not in result.stderr


def test_typed_stub_matches_the_compiled_module():
    import ast
    import re

    stub = pathlib.Path(fastbp._core.__file__).with_name("_core.pyi")
    assert stub.exists() and (stub.parent / "py.typed").exists()
    declared = {node.name: [a.arg for a in node.args.args]
                for node in ast.parse(stub.read_text()).body if isinstance(node, ast.FunctionDef)}
    compiled = {}
    for name in dir(fastbp._core):
        fn = getattr(fastbp._core, name)
        if callable(fn) and not name.startswith("_"):
            signature = fn.__doc__.splitlines()[0]  # pybind11: "name(arg: type, ...) -> type"
            compiled[name] = re.findall(r"(\w+):", signature[signature.index("("):])
    assert declared == compiled
