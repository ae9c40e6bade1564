"""tools/find-python312: the path of a Python 3.12 on stdout, else what to install.

Run with an environment of the test's own (PATH, HOME and PYENV_ROOT in
temporary folders), with stand-in interpreters: shell scripts that answer
the script's probe as a Python would, or fail as a pyenv shim does for a
version that is not enabled.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FINDER = ROOT / "tools" / "find-python312"


def fake_python(path: Path, micro: int | None) -> Path:
    """An executable that reports itself as 3.12.<micro>, or fails (None), as a shim would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    answer = (
        f'echo "{micro} {path}"' if micro is not None else "echo 'pyenv: not enabled' >&2; exit 127"
    )
    path.write_text(f"#!/bin/sh\n{answer}\n")
    path.chmod(0o755)
    return path


def find(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    defaults = {"PATH": str(empty), "HOME": str(empty), "PYENV_ROOT": str(empty)}
    return subprocess.run(
        ["/bin/sh", FINDER],
        env=defaults | environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_without_a_python312_it_says_what_to_install(tmp_path: Path) -> None:
    found = find(tmp_path)
    assert found.returncode == 1
    assert found.stdout == ""
    assert "Python 3.12 is needed" in found.stderr
    assert "pyenv install 3.12" in found.stderr
    assert "PYTHON312=/path/to/python3.12" in found.stderr


def test_a_failing_python312_on_path_is_passed_over_for_pyenv_s_highest(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    fake_python(shims / "python3.12", None)  # pyenv's shim, no 3.12 enabled
    versions = tmp_path / "pyenv" / "versions"
    fake_python(versions / "3.12.9" / "bin" / "python3.12", 9)
    newest = fake_python(versions / "3.12.10" / "bin" / "python3.12", 10)  # not "3.12.9" < it
    found = find(tmp_path, PATH=str(shims), PYENV_ROOT=str(tmp_path / "pyenv"))
    assert (found.returncode, found.stdout.strip()) == (0, str(newest)), found.stderr


def test_a_working_python312_on_path_comes_first(tmp_path: Path) -> None:
    on_path = fake_python(tmp_path / "bin" / "python3.12", 1)
    fake_python(tmp_path / "pyenv" / "versions" / "3.12.10" / "bin" / "python3.12", 10)
    found = find(tmp_path, PATH=str(on_path.parent), PYENV_ROOT=str(tmp_path / "pyenv"))
    assert (found.returncode, found.stdout.strip()) == (0, str(on_path)), found.stderr


def test_python312_overrides_and_must_work(tmp_path: Path) -> None:
    chosen = fake_python(tmp_path / "chosen" / "python", 4)
    fake_python(tmp_path / "bin" / "python3.12", 10)
    found = find(tmp_path, PATH=str(tmp_path / "bin"), PYTHON312=str(chosen))
    assert (found.returncode, found.stdout.strip()) == (0, str(chosen)), found.stderr
    broken = fake_python(tmp_path / "broken" / "python", None)
    refused = find(tmp_path, PATH=str(tmp_path / "bin"), PYTHON312=str(broken))
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert f"PYTHON312={broken} is not a working Python 3.12" in refused.stderr


def test_on_this_machine_it_finds_a_python_that_is_3_12() -> None:
    found = subprocess.run([FINDER], capture_output=True, text=True, timeout=30, check=False)
    if found.returncode != 0:
        pytest.skip(f"no Python 3.12 here: {found.stderr.strip()}")
    version = subprocess.run(
        [found.stdout.strip(), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert version.stdout.strip() == "(3, 12)"
