"""Model files: written atomically with the same permissions as any other output."""

import os
import stat

import pytest
import torch

from livegesture.modelio import load_model_file, save_model_file


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_model_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = save_model_file(tmp_path / "m.safetensors", {"w": torch.arange(6.0)}, "test", {"a": 1})
        npz = tmp_path / "other.txt"
        npz.write_text("x")  # what any other output gets
    finally:
        os.umask(old)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE(npz.stat().st_mode), oct(mode)
    tensors, meta = load_model_file(path, "test")
    assert torch.equal(tensors["w"], torch.arange(6.0)) and meta["a"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
