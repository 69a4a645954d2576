"""Outputs appear whole or not at all, and nothing already there is overwritten."""

import os
import stat

import pytest

from vlcp.atomic import OutputExistsError, atomic_dir, atomic_write


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("mine")
    with pytest.raises(OutputExistsError, match="does not overwrite"):
        with atomic_write(target) as handle:
            handle.write("new")
    assert target.read_text() == "mine"
    with pytest.raises(OutputExistsError):
        with atomic_dir(tmp_path):
            pass


def test_dir_appears_complete(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_text("1")
            raise ValueError
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_get_the_modes_of_the_users_umask(tmp_path, umask):
    # a group sharing a results folder reads it: not the owner-only modes of mkstemp and mkdtemp
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "table.csv") as handle:
            handle.write("a\n")
        with atomic_dir(tmp_path / "set") as folder:
            (folder / "0.png").write_bytes(b"")
            (folder / "unet").mkdir()
            os.close(
                os.open(folder / "unet" / "weights.safetensors", os.O_CREAT | os.O_WRONLY, 0o600)
            )  # as safetensors
        (tmp_path / "plain").mkdir()
        (tmp_path / "plain.txt").write_text("")
    finally:
        os.umask(old)
    assert (
        stat.S_IMODE((tmp_path / "table.csv").stat().st_mode)
        == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
        == 0o666 & ~umask
    )
    assert (
        stat.S_IMODE((tmp_path / "set").stat().st_mode)
        == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
        == 0o777 & ~umask
    )
    assert stat.S_IMODE((tmp_path / "set" / "unet").stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "set" / "unet" / "weights.safetensors").stat().st_mode) == 0o666 & ~umask
