"""The command line: `python -m vlcp` lists its stages, and only expected failures become one line."""

import errno
import subprocess
import sys

import pytest

from conftest import REPO
from vlcp.cli import run
from vlcp.contract import ContractError


def vlcp(*args):
    return subprocess.run([sys.executable, "-m", "vlcp", *args], capture_output=True, text=True, cwd=REPO)


def test_help_lists_the_stages_and_each_stage_names_itself():
    result = vlcp("--help")
    assert result.returncode == 0 and "caption" in result.stdout and "evaluate" in result.stdout
    stage = vlcp("cluster", "-h")
    assert stage.returncode == 0 and stage.stdout.startswith("usage: python -m vlcp cluster")
    unknown = vlcp("nonsense")
    assert unknown.returncode == 1 and "STAGE: demo_data" in unknown.stderr


def raising(err):
    def main():
        raise err

    return main


def test_our_errors_and_a_full_disk_are_one_line():
    with pytest.raises(SystemExit, match=r"^error: results/x.json: not JSON"):
        run(raising(ContractError("results/x.json: not JSON")))
    with pytest.raises(SystemExit, match=r"^error: the disk is full while writing out.png"):
        run(raising(OSError(errno.ENOSPC, "No space left on device", "out.png")))


def test_a_library_error_keeps_its_traceback():
    with pytest.raises(ValueError, match="inside a library"):
        run(raising(ValueError("inside a library")))
    with pytest.raises(FileNotFoundError):
        run(raising(FileNotFoundError(errno.ENOENT, "No such file", "input.jsonl")))


def test_a_loaders_value_error_means_not_found_only_for_a_local_folder(tmp_path):
    from vlcp.models import load_error

    assert load_error("org/some-model", OSError("not in the cache"))
    assert load_error(str(tmp_path), ValueError("a component is missing"))
    assert not load_error("org/not-a-folder-here", ValueError("a defect")), "a defect keeps its traceback"
