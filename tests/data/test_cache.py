"""The prepared cache: same clips and windows as the folder, resumable, invalidated by changed
files, never used half-written, other format versions refused, bad files listed."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from livegesture.body.constants import REGIONS
from livegesture.cli import app, main
from livegesture.data import (RegionStats, Vocabulary, WindowDataset, find_clips, load_clip,
                              training_features)
from livegesture.data.cache import INDEX, JOURNAL, FileRows, PreparedCache, open_cache
from livegesture.data.prepare import _Writer, prepare_cache
from livegesture.data.windows import ClipWindows
from livegesture.errors import DataError

from .conftest import SYNTH_IDS


@pytest.fixture(scope="module")
def cache(synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "c"
    report = prepare_cache(synth_root, out, workers=1, progress=False)
    assert (report.clips, report.kept, report.read, report.bad) == (4, 0, 4, [])
    return out


def test_cache_has_the_folders_clips(synth_root, cache):
    for kw in ({}, {"split": "train"}, {"split": ["val", "test"]}, {"ids": [SYNTH_IDS[1]]}):
        assert [c.id for c in find_clips(cache, **kw)] == [c.id for c in find_clips(synth_root, **kw)]
        assert [c.split for c in find_clips(cache, **kw)] == [c.split for c in find_clips(synth_root, **kw)]
    for f, g in zip(find_clips(cache), find_clips(synth_root)):
        a, b = load_clip(f), load_clip(g)
        assert f.cache is not None and f.motion == g.motion.resolve()
        for k in ("poses", "trans", "expressions", "betas"):
            np.testing.assert_array_equal(getattr(a.motion, k), getattr(b.motion, k))
        np.testing.assert_array_equal(a.audio, b.audio)
        assert a.words == b.words and a.motion.fps == 30
        assert not a.audio.flags.writeable          # views of the read-only maps


def test_stored_statistics_equal_computed_ones(synth_root, cache):
    c = open_cache(cache)
    train = [load_clip(f) for f in find_clips(synth_root, split="train")]
    want = RegionStats.compute(training_features(d.motion) for d in train)
    got = c.stats("train")
    mine = RegionStats.from_moments(c.moments(c.clips[d.id]) for d in train)
    for r in REGIONS:
        np.testing.assert_array_equal(got.mean[r], want.mean[r])
        np.testing.assert_array_equal(mine.std[r], want.std[r])


@pytest.mark.parametrize("window,stride,ctx,grid", [(64, 12, 24, 12), (32, 1, 0, 1), (16, 24, 12, 12)])
def test_windows_from_the_cache_equal_windows_from_the_folder(synth_root, cache, window, stride, ctx, grid):
    files = find_clips(cache)
    loaded = [load_clip(f) for f in find_clips(synth_root)]
    stats = RegionStats.compute(training_features(d.motion) for d in loaded)
    vocab = Vocabulary.build([w.text for d in loaded[:2] for w in d.words], min_count=2)
    c = open_cache(cache)
    from livegesture.data.cache import cached_windows

    kw = dict(window_frames=window, stride_frames=stride, stats=stats, vocab=vocab,
              audio_context_frames=ctx, start_grid=grid)
    mem = WindowDataset(loaded, **kw)
    mapped = WindowDataset([cached_windows(c, f.id) for f in files], **kw)
    assert isinstance(mapped.sources[0].features, FileRows)
    assert len(mem) == len(mapped) and mem.index == mapped.index
    for i in range(0, len(mem), max(1, len(mem) // 25)):
        a, b = mem[i], mapped[i]
        assert a.keys() == b.keys()
        for k in a:
            if k in ("clip", "start"):
                assert a[k] == b[k]
            else:
                np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    words = np.concatenate([mapped[i]["words"].numpy() for i in range(len(mapped))])
    assert (words > 1).any() and (words == 1).any()  # known words and <unk>: the vocabulary is used


def test_mirrored_and_segmented_cache_clips(synth_root, cache):
    from livegesture.data.cache import cached_windows

    c = open_cache(cache)
    d = load_clip(find_clips(synth_root, ids=[SYNTH_IDS[0]])[0])
    mem, mapped = ClipWindows.from_clip(d), cached_windows(c, SYNTH_IDS[0])
    mirrored = training_features(d.motion.mirrored())
    for r in REGIONS:
        np.testing.assert_array_equal(mapped.mirror().feature_window(r, 5, 37), mirrored[r][5:37])
    tail_a, tail_b = mem.segment(120, len(mem), "t"), mapped.segment(120, len(mapped), "t")
    np.testing.assert_array_equal(tail_a.audio, np.asarray(tail_b.audio))
    np.testing.assert_array_equal(tail_a.feature_window("hands", 0, 20), tail_b.feature_window("hands", 0, 20))
    feats = training_features(d.motion)
    for r in REGIONS:
        np.testing.assert_allclose(tail_b.moments.mean[r], feats[r][120:].astype(np.float64).mean(0), atol=1e-9)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_resume_after_a_kill_and_changed_files(synth_root, tmp_path):
    data = _copy(synth_root, tmp_path / "data")
    out = tmp_path / "c"
    first = prepare_cache(data, out, workers=1, ids=SYNTH_IDS[:2], progress=False)
    assert first.clips == 2
    # a kill after two more clips were appended but before their journal lines were complete
    journal = (out / JOURNAL).read_bytes()
    with open(out / "arrays" / "audio.bin", "ab") as f:
        f.write(b"\x01" * 1000)
    (out / JOURNAL).write_bytes(journal + b'{"id": "2_scott_0_3_3", "fra')
    (out / INDEX).unlink()
    with pytest.raises(DataError, match="unfinished cache"):
        find_clips(out)
    again = prepare_cache(data, out, workers=1, progress=False)
    assert (again.clips, again.kept, again.read) == (4, 2, 2)
    assert (out / "arrays" / "audio.bin").stat().st_size == sum(
        len(load_clip(f).audio) for f in find_clips(data)) * 4        # the torn tail is gone
    for f, g in zip(find_clips(out), find_clips(data)):
        np.testing.assert_array_equal(load_clip(f).audio, load_clip(g).audio)
    # a changed source file: the cache refuses to be used until it is prepared again
    m = load_clip(find_clips(data, ids=[SYNTH_IDS[2]])[0]).motion
    m.poses[:] += np.float32(0.1)
    m.save(data / "smplxflame_30" / f"{SYNTH_IDS[2]}.npz")
    with pytest.raises(DataError, match=f"stale cache: .*{SYNTH_IDS[2]}.npz changed"):
        PreparedCache.open(out)
    third = prepare_cache(data, out, workers=1, progress=False)
    assert (third.kept, third.read) == (3, 1)
    np.testing.assert_array_equal(load_clip(find_clips(out, ids=[SYNTH_IDS[2]])[0]).motion.poses, m.poses)
    assert prepare_cache(data, out, workers=1, progress=False).read == 0


def test_other_format_version_is_refused_in_one_line(cache, tmp_path, monkeypatch, capsys):
    out = _copy(cache, tmp_path / "c")
    index = json.loads((out / INDEX).read_text())
    index["version"] = 99
    (out / INDEX).write_text(json.dumps(index))
    with pytest.raises(DataError, match="cache format version 99, this LiveGesture reads version 1"):
        find_clips(out)
    lines = (out / JOURNAL).read_text().splitlines(keepends=True)
    (out / JOURNAL).write_text(lines[0].replace('"version": 1', '"version": 99') + "".join(lines[1:]))
    with pytest.raises(DataError, match="a cache of format version 99, this LiveGesture writes version 1"):
        _Writer(out)
    monkeypatch.setattr(sys, "argv", ["livegesture", "train", "tokenizer", "--data", str(out),
                                      "--out", str(tmp_path / "t.safetensors")])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "cache format version 99" in err[0]


def test_prepare_refuses_unsafe_outputs(synth_root, cache, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty and is not a LiveGesture cache"):
        prepare_cache(synth_root, tmp_path / "busy", workers=1, progress=False)
    with pytest.raises(DataError, match="already a prepared cache"):
        prepare_cache(cache, tmp_path / "x", workers=1, progress=False)
    with pytest.raises(DataError, match="a folder of its own"):
        prepare_cache(synth_root, synth_root, workers=1, progress=False)


def test_bad_files_are_listed_and_the_rest_is_usable(synth_root, tmp_path, monkeypatch):
    import livegesture.data.prepare as prepare

    # two worker processes; forked here, since spawning two that import torch takes most of a
    # minute on a loaded 2-core machine (the real-data run in the report used spawn)
    monkeypatch.setattr(prepare, "MP_CONTEXT", "fork")
    data = _copy(synth_root, tmp_path / "data")
    npz = data / "smplxflame_30" / f"{SYNTH_IDS[0]}.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])          # truncated
    (data / "wave16k" / f"{SYNTH_IDS[1]}.wav").write_text("this is not audio\n")
    res = CliRunner().invoke(app, ["prepare", "--data", str(data), "--out", str(tmp_path / "c"),
                                   "--workers", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 clip(s)" in res.output and "2 bad file(s)" in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("  ")]
    assert len(lines) == 2
    assert f"{SYNTH_IDS[0]}.npz: unreadable npz" in lines[0] or f"{SYNTH_IDS[0]}.npz: unreadable npz" in lines[1]
    assert any(f"{SYNTH_IDS[1]}.wav: not an audio file" in ln for ln in lines)
    assert [c.id for c in find_clips(tmp_path / "c")] == SYNTH_IDS[2:]
    assert len(json.loads((tmp_path / "c" / INDEX).read_text())["bad"]) == 2


def test_reading_windows_maps_nothing(cache):
    """Windows come from pread, not page faults: the maps' resident pages do not grow."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc")
    from livegesture.data.cache import cached_windows

    def rss_file() -> int:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("RssFile"))

    c = open_cache(cache)
    ds = WindowDataset([cached_windows(c, i) for i in SYNTH_IDS], 32, 1, start_grid=1)
    c.trim()
    before = rss_file()
    for i in range(len(ds)):
        ds[i]
    assert rss_file() - before < 512                   # kB


def test_real_sample_folder(beat2_dir, tmp_path):
    """The real BEAT2 samples: a usable cache (float32 motion: the float64 expressions round), and a
    copy with a truncated npz and a non-audio wav: those two listed, the other clip usable."""
    rep = prepare_cache(beat2_dir, tmp_path / "c", workers=1, progress=False)
    assert (rep.clips, rep.bad) == (3, [])
    for f in find_clips(tmp_path / "c", require=()):
        a, b = load_clip(f), load_clip(find_clips(beat2_dir, ids=[f.id], require=())[0])
        np.testing.assert_array_equal(a.audio, b.audio)
        assert a.words == b.words
        if b.motion is not None:
            np.testing.assert_array_equal(a.motion.poses, b.motion.poses)
            np.testing.assert_allclose(a.motion.expressions, b.motion.expressions, atol=1e-6)
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in beat2_dir.iterdir():
        shutil.copyfile(p, bad / p.name)
    npz = bad / "2_scott_0_2_2.npz"
    npz.write_bytes(npz.read_bytes()[:1_000_000])
    (bad / "2_scott_0_4_4.wav").write_text("not audio\n")
    rep = prepare_cache(bad, tmp_path / "cb", workers=1, progress=False)
    assert sorted(os.path.basename(p) for p, _ in rep.bad) == ["2_scott_0_2_2.npz", "2_scott_0_4_4.wav"]
    assert [c.id for c in find_clips(tmp_path / "cb")] == ["2_scott_0_1_1"]
