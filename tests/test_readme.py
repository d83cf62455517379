"""The README's two commands, as a new user types them in the root of a fresh clone."""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_commands():
    """The fenced commands of the README's "Two commands" section: [main job, tests]."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```\n(.*?)```", section, re.S)]


def test_readme_has_two_commands_and_ci_runs_them_verbatim():
    if not (ROOT / "README.md").exists() or not (ROOT / ".ci" / "run").exists():
        pytest.skip("not in a source checkout")
    commands = readme_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, f"{command!r} is not a line of .ci/run"


@pytest.mark.slow
def test_readme_commands_in_a_fresh_clone(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    clone = tmp_path / "fastbp"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(venv)
    outputs = []
    for command in readme_commands():
        result = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True,
                                text=True, timeout=1800)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        outputs.append(result.stdout)
    assert "geomean time ratio vs numpy" in outputs[0]
    assert " passed" in outputs[1]
