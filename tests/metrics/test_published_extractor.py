"""The published FGD extractor (EMAGE VAESKConv): skeleton topology, file layout, loading and refusals.
Equality of its features with the published code's is in test_published_reference.py."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from livegesture.cli import app
from livegesture.errors import CheckpointError
from livegesture.metrics.extractor import FgdConfig, FgdExtractor, load_extractor
from livegesture.metrics.published_extractor import (PublishedFgdExtractor, edge_neighbours,
                                                     load_published_extractor, pool_groups, published_state,
                                                     skeleton_edges)
from tests.metrics.seeded_extractor import seeded_state, write_seeded_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ext") / "AESKConv_240_100.bin"
    write_seeded_checkpoint(path)
    return path


def test_skeleton_levels() -> None:
    """55 edges (a virtual one above the pelvis + one per joint) pooled to 35, then 20 chains."""
    edges = skeleton_edges()
    assert len(edges) == 55 and edges[0] == (0, 55) and edges[21] == (19, 21)
    m = PublishedFgdExtractor()
    assert [len(lv.pooled_edges) for lv in m.encoder][:2] == [35, 20]
    assert [lv.pool is not None for lv in m.encoder] == [True, True, False, False]
    groups, _ = pool_groups(edges)
    assert [0] in groups and [1, 4] in groups and [3] in groups and [6, 9] in groups  # spine 3-6-9: odd chain
    nb = edge_neighbours(edges)
    assert nb[20] == sorted({20, 18, 16, 25, 28, 31, 34, 37, 26, 29, 32, 35, 38})  # the left wrist's edge


def test_masks_keep_edges_to_their_neighbourhood() -> None:
    m = PublishedFgdExtractor()
    mask = m.encoder[0].conv.mask  # (55*6, 55*6, 4)
    nb = edge_neighbours(skeleton_edges())
    for e in (0, 20, 40):
        seen = mask[e * 6:(e + 1) * 6].amax(dim=(0, 2)).reshape(55, 6).amax(1).nonzero().flatten().tolist()
        assert seen == nb[e]


def test_features_shape_and_time_cut(ckpt: Path) -> None:
    ext = load_published_extractor(ckpt)
    x = torch.randn(1, 100, 330)
    f = ext.features(x)
    assert f.shape == (96 // 16, 240) and f.dtype == np.float32  # cut to 96 frames, one row per 16
    np.testing.assert_array_equal(f, ext.features(x[:, :96]))
    with pytest.raises(ValueError, match="at least 32 frames"):
        ext.features(torch.randn(1, 31, 330))
    # GroupNorm and convs make every row depend on the whole (cut) clip, as in the published model
    assert not np.allclose(ext.features(x[:, :64])[:2], f[:2])


def test_module_prefix_optional(ckpt: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare.bin"
    write_seeded_checkpoint(bare, prefix="")
    x = torch.randn(1, 64, 330)
    np.testing.assert_array_equal(load_published_extractor(bare).features(x), load_published_extractor(ckpt).features(x))


def _save(path: Path, state: dict) -> Path:
    torch.save({"model_state": state}, path)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({"encoder.layers.0.0.residual.0.weight": torch.zeros(330, 330, 3)}),
     "encoder.layers.0.0.residual.0.weight has shape (330, 330, 3), expected (330, 330, 4)"),
    (lambda s: s.pop("decoder.main.14.bias"), "key decoder.main.14.bias (330,) is missing"),
    (lambda s: s.update({"quantizer.codebook": torch.zeros(256, 240)}), "unexpected key quantizer.codebook (256, 240)"),
    (lambda s: s["encoder.layers.1.0.residual.0.mask"].fill_(1.0),
     "encoder.layers.1.0.residual.0.mask differs from the SMPL-X skeleton's"),
])
def test_mismatched_files_are_refused_naming_the_key(tmp_path: Path, change, message: str) -> None:
    state = seeded_state()
    change(state)
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_published_extractor(_save(tmp_path / "x.bin", state))


class _Payload:
    def __reduce__(self):  # would run code if unpickled without weights_only
        return (print, ("ran code from the checkpoint",))


def test_loading_never_runs_code(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "evil.bin"
    with open(bad, "wb") as f:
        pickle.dump({"model_state": _Payload()}, f)
    with pytest.raises(CheckpointError, match="not a torch checkpoint readable without running code"):
        load_published_extractor(bad)
    assert "ran code" not in capsys.readouterr().out
    plain = tmp_path / "plain.bin"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(CheckpointError, match="expected a {'model_state'"):
        load_published_extractor(plain)


def test_load_extractor_dispatches_on_the_file(ckpt: Path, tmp_path: Path) -> None:
    assert isinstance(load_extractor(ckpt), PublishedFgdExtractor)
    own = FgdExtractor(FgdConfig(joint_channels=2, hidden=8, latent=4))
    path = own.save(tmp_path / "own.safetensors")
    loaded = load_extractor(path)
    assert isinstance(loaded, FgdExtractor) and "not comparable" in loaded.label


def test_layout_round_trip() -> None:
    """published_state lists every tensor of the file once, trained ones as the model holds them."""
    m = PublishedFgdExtractor()
    st = published_state(m)
    assert len(st) == 56 and sum(v.numel() for v in st.values()) == 4384500  # the published file's count
    assert torch.equal(st["decoder.main.3.weight"], m.up[0].weight)


def test_cli_refuses_a_mismatched_extractor_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    import sys

    from livegesture.cli import main
    from livegesture.data import write_synthetic_beat2

    state = seeded_state()
    state["fc_mu.weight"] = torch.zeros(128, 240)
    bad = _save(tmp_path / "AESKConv_240_100.bin", state)
    data = tmp_path / "synth"
    write_synthetic_beat2(data, n_clips=1, seconds=6.0, seed=0)
    monkeypatch.setattr(sys, "argv", ["livegesture", "evaluate", "--data", str(data), "--extractor", str(bad)])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert "fc_mu.weight has shape (128, 240), expected (240, 240)" in err[0]
