"""`livegesture prepare`: read a BEAT2 folder once, in parallel, into a memory-mapped cache
(:mod:`.cache`). Resumable: rerun after a kill and it goes on where it stopped; a clip whose
source files changed (size or mtime) is read again, unchanged clips are kept. Files that cannot
be read are listed with their problem at the end, and their clips are left out."""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..body.constants import FPS, NUM_BETAS, REGIONS
from ..errors import DataError
from .cache import (ARRAYS, ARRAYS_DIR, FORMAT, INDEX, JOURNAL, ROW_FIELDS, VERSION, fingerprint,
                    is_cache, read_index)
from .features import FeatureMoments, RegionStats

#: how worker processes start: spawned, since forking a process that has run torch can hang
MP_CONTEXT = "spawn"
#: commit the journal (after syncing the arrays it points into) at least this often
COMMIT_EVERY_CLIPS = 16
COMMIT_EVERY_S = 5.0


@dataclass
class PrepareReport:
    """What a prepare run did: clips in the cache, how many were kept or read, the bad files."""

    root: Path
    clips: int
    kept: int
    read: int
    bad: list[tuple[str, str]] = field(default_factory=list)   # (file, problem)
    frames: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------- one clip (in a worker)
def _read_clip(files, root: str) -> tuple[str, Any]:
    """('ok', arrays and metadata) or ('bad', [(file, problem), ...]) for one clip."""
    from ..motion import Motion
    from .audio import SAMPLE_RATE, load_audio
    from .beat2 import crop_lengths
    from .features import training_features
    from .textgrid import read_words
    from .windows import frame_text_ids

    problems: list[tuple[str, str]] = []

    def attempt(path, fn):
        try:
            return fn(path)
        except Exception as exc:  # every problem of a file is reported, none stops the run
            msg = str(exc)
            prefix = f"{path}: "
            problems.append((str(path), msg[len(prefix):] if msg.startswith(prefix) else
                             f"{exc.__class__.__name__}: {msg}"))
            return None

    motion = attempt(files.motion, Motion.load) if files.motion is not None else None
    audio = attempt(files.audio, lambda p: load_audio(p, SAMPLE_RATE)) if files.audio is not None else None
    words = attempt(files.textgrid, read_words) if files.textgrid is not None else None
    if motion is not None:
        if motion.fps != FPS:
            problems.append((str(files.motion), f"motion at {motion.fps:g} fps; the cache holds {FPS} fps motion"))
        elif len(motion.betas) > NUM_BETAS:
            problems.append((str(files.motion), f"{len(motion.betas)} betas; at most {NUM_BETAS} are kept"))
    if problems:
        return "bad", problems
    if motion is not None and audio is not None:
        n, samples = crop_lengths(len(motion), len(audio), SAMPLE_RATE, motion.fps)
        if n == 0:
            return "bad", [(str(files.motion), f"no frame in common with {files.audio} "
                                               f"({len(motion)} frames, {len(audio)} samples)")]
        motion, audio = motion[:n], audio[:samples]
    out: dict[str, Any] = {"id": files.id}
    n = len(motion) if motion is not None else 0
    table: dict[str, int] = {}
    if motion is not None:
        feats = training_features(motion)
        out.update({"poses": motion.poses.reshape(n, -1), "trans": motion.trans,
                    "expressions": motion.expressions,
                    "features": np.concatenate([feats[r] for r in REGIONS], axis=1),
                    "moments": FeatureMoments.of(feats).to_array(), "n_betas": len(motion.betas),
                    "betas": np.pad(np.asarray(motion.betas, np.float32), (0, NUM_BETAS - len(motion.betas))),
                    "gender": motion.gender, "model": motion.model,
                    "frame_words": frame_text_ids(words or [], n, table)})
    if audio is not None:
        out["audio"] = audio
    if words is not None:
        out["word_spans"] = np.array([(w.start, w.end) for w in words], np.float64).reshape(-1, 2)
        out["word_text"] = np.array([table.setdefault(w.text, len(table)) for w in words], np.int32)
    out["texts"] = list(table)
    rel = {}
    for kind in ("motion", "audio", "textgrid"):
        p = getattr(files, kind)
        if p is not None:
            rel[kind] = [os.path.relpath(p, root), *fingerprint(Path(p))]
    out["sources"] = rel
    return "ok", out


# ---------------------------------------------------------------- the cache being written
class _Writer:
    """Appends clips to the array files and journals them; resumes from the journal."""

    def __init__(self, out: Path) -> None:
        self.out = out
        (out / ARRAYS_DIR).mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, dict[str, Any]] = {}
        self.texts: list[str] = []
        self.ends = {kind: 0 for kind in ROW_FIELDS}
        self._replay()
        self._files = {}
        for name, (dtype, width, kind) in ARRAYS.items():
            path = out / ARRAYS_DIR / f"{name}.bin"
            f = open(path, "r+b" if path.exists() else "w+b")
            f.truncate(self.ends[kind] * width * np.dtype(dtype).itemsize)  # drop an unjournaled tail
            f.seek(0, os.SEEK_END)
            self._files[name] = f
        new = not (out / JOURNAL).is_file() or (out / JOURNAL).stat().st_size == 0
        self._journal = open(out / JOURNAL, "a", encoding="utf-8")
        if new:
            self._journal.write(json.dumps({"format": FORMAT, "version": VERSION}) + "\n")
        self._text_ids = {t: i for i, t in enumerate(self.texts)}
        self._pending: list[str] = []
        self._last_commit = time.monotonic()

    def _replay(self) -> None:
        path = self.out / JOURNAL
        if not path.is_file() or path.stat().st_size == 0:
            return
        good = 0
        with open(path, "rb") as f:
            head = f.readline()
            try:
                header = json.loads(head)
            except (UnicodeDecodeError, json.JSONDecodeError):
                header = None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise DataError(f"{path}: not a LiveGesture cache journal; choose another --out")
            if header.get("version") != VERSION:
                raise DataError(f"{self.out}: a cache of format version {header.get('version')}, this LiveGesture "
                                f"writes version {VERSION}; delete it or choose another --out")
            good = len(head)
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # a torn last line: that clip was not committed
                try:
                    e = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    break
                good += len(raw)
                self.texts.extend(e.pop("new_texts", []))
                self.entries[e["id"]] = e
                for kind, fld in ROW_FIELDS.items():
                    end = e[fld] + 1 if kind == "clip" else e[fld][0] + e[fld][1]
                    self.ends[kind] = max(self.ends[kind], end)
        with open(path, "r+b") as f:
            f.truncate(good)

    def add(self, d: dict[str, Any]) -> dict[str, Any]:
        new_texts = [t for t in d["texts"] if t not in self._text_ids]
        for t in new_texts:
            self._text_ids[t] = len(self.texts)
            self.texts.append(t)
        lut = np.array([self._text_ids[t] for t in d["texts"]], np.int32)
        n = len(d.get("frame_words", ()))
        rows = {"frame": n, "sample": len(d.get("audio", ())), "word": len(d.get("word_text", ())), "clip": 1}
        if "frame_words" in d:
            fw = d["frame_words"]
            d["frame_words"] = np.where(fw > 0, lut[np.maximum(fw - 1, 0)] + 1, 0).astype(np.int32)
        if "word_text" in d:
            d["word_text"] = lut[d["word_text"]] if len(d["word_text"]) else d["word_text"]
        for name, (dtype, width, kind) in ARRAYS.items():
            if rows[kind] == 0:
                continue
            if name in d:
                a = np.ascontiguousarray(np.asarray(d[name]).reshape(rows[kind], width), dtype)
            else:  # per-clip rows of a clip without motion
                a = np.zeros((1, width), dtype)
            self._files[name].write(a.tobytes())
        entry = {"id": d["id"], "sources": d["sources"],
                 "has": {"motion": "poses" in d, "audio": "audio" in d, "textgrid": "word_text" in d},
                 "frames": [self.ends["frame"], rows["frame"]], "samples": [self.ends["sample"], rows["sample"]],
                 "words": [self.ends["word"], rows["word"]], "row": self.ends["clip"],
                 "n_betas": int(d.get("n_betas", NUM_BETAS)), "gender": str(d.get("gender", "neutral")),
                 "model": str(d.get("model", "smplx2020"))}
        for kind in ROW_FIELDS:
            self.ends[kind] += rows[kind]
        self.entries[entry["id"]] = entry
        self._pending.append(json.dumps({**entry, "new_texts": new_texts}) + "\n")
        if len(self._pending) >= COMMIT_EVERY_CLIPS or time.monotonic() - self._last_commit > COMMIT_EVERY_S:
            self.commit()
        return entry

    def commit(self) -> None:
        """Make the arrays durable, then the journal lines that point into them."""
        for f in self._files.values():
            f.flush()
            os.fsync(f.fileno())
        if self._pending:
            self._journal.write("".join(self._pending))
            self._journal.flush()
            os.fsync(self._journal.fileno())
            self._pending = []
        self._last_commit = time.monotonic()

    def close(self) -> None:
        self.commit()
        for f in self._files.values():
            f.close()
        self._journal.close()


def _stats(moments: Iterable[FeatureMoments]) -> dict[str, Any] | None:
    ms = list(moments)
    if not ms:
        return None
    s = RegionStats.from_moments(ms)
    return {"mean": {r: s.mean[r].tolist() for r in REGIONS}, "std": {r: s.std[r].tolist() for r in REGIONS}}


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_out(data_dir: Path, out: Path) -> None:
    if is_cache(data_dir):
        raise DataError(f"{data_dir}: is already a prepared cache; train or evaluate on it directly")
    if out.resolve() == data_dir.resolve():
        raise DataError(f"{out}: the cache needs a folder of its own, not the data folder")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_cache(out):
        raise DataError(f"{out}: exists, is not empty and is not a LiveGesture cache; choose another --out")
    if (out / INDEX).exists():
        read_index(out)  # refuses another format version with one line


class _Lock:
    """An exclusive lock on the cache folder, so that two prepares never write it at once; with
    `wait`, the second waits for the first (DDP ranks preparing the same work-folder cache)."""

    def __init__(self, out: Path, wait: bool = False) -> None:
        self.f = open(out / ".lock", "w")
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            return
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            self.f.close()
            raise DataError(f"{out}: another `livegesture prepare` is writing this cache") from None

    def release(self) -> None:
        self.f.close()


def prepare_cache(data_dir: str | os.PathLike, out: str | os.PathLike, workers: int | None = None,
                  ids: Sequence[str] | None = None, progress: bool = True, wait: bool = False) -> PrepareReport:
    """Write (or update) the cache `out` of the BEAT2 folder `data_dir` (every clip, or `ids`).

    `workers` processes read clips in parallel (default: the CPU count, fewer for a few clips;
    1 reads in this process). Workers are spawned, so a script that calls this with several
    workers needs the usual ``if __name__ == "__main__":`` guard. With `wait`, a prepare already
    writing `out` is waited for instead of refused (then this one finds its clips unchanged).
    The index is written last, atomically: until then the folder is an unfinished cache that
    nothing reads, and a rerun completes it.
    """
    from tqdm.auto import tqdm

    from .beat2 import MEAN_VEL_FILE, SPLIT_CSV, find_clips, find_mean_vel

    t0 = time.perf_counter()
    data_dir, out = Path(data_dir), Path(out)
    _check_out(data_dir, out)
    clips = find_clips(data_dir, ids=list(ids) if ids is not None else None, require=())
    out.mkdir(parents=True, exist_ok=True)
    lock = _Lock(out, wait)
    try:
        writer = _Writer(out)
        todo, kept = [], 0
        root = str(data_dir.resolve())
        for c in clips:
            e = writer.entries.get(c.id)
            if e is not None and _same_sources(e, c, data_dir):
                kept += 1
            else:
                todo.append(c)
        bad: list[tuple[str, str]] = []
        bad_ids: set[str] = set()
        # by default one worker per 8 clips at most: starting one costs about as much as reading a few
        cap = len(todo) // 8 + 1 if workers is None else len(todo)
        n_workers = max(1, min(workers or os.cpu_count() or 1, cap))
        bar = tqdm(total=len(todo), desc="prepare", unit="clip", disable=not progress or not todo)

        def take(files, result) -> None:
            status, payload = result
            if status == "ok":
                writer.add(payload)
            else:
                bad.extend(payload)
                bad_ids.add(files.id)
            bar.update(1)

        try:
            if n_workers == 1:
                for c in todo:
                    take(c, _read_clip(c, root))
            else:
                import multiprocessing

                with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context(MP_CONTEXT)) as pool:
                    pending = {pool.submit(_read_clip, c, root): c for c in todo}
                    while pending:
                        done, _ = wait_for(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            c = pending.pop(fut)
                            try:
                                result = fut.result()
                            except Exception as exc:  # a worker that died: report the clip, go on
                                result = ("bad", [(str(c.motion or c.audio or c.textgrid),
                                                   f"reading it stopped the worker ({exc.__class__.__name__}: {exc})")])
                            take(c, result)
        finally:
            bar.close()
            writer.close()
        entries = [writer.entries[c.id] for c in clips if c.id in writer.entries and c.id not in bad_ids]
        split = {c.id: c.split for c in clips}
        index_clips = [{**e, "split": split[e["id"]]} for e in entries]
        moments = {e["id"]: _moments_of(out, e) for e in entries if e["has"]["motion"]}
        mean_vel = find_mean_vel(data_dir)
        if mean_vel is not None:
            tmp = out / (MEAN_VEL_FILE + ".tmp")
            shutil.copyfile(mean_vel, tmp)
            os.replace(tmp, out / MEAN_VEL_FILE)
        index = {
            "format": FORMAT, "version": VERSION, "source": root,
            "has_splits": (data_dir / SPLIT_CSV).is_file(),
            "sample_rate": 16000, "fps": FPS, "rows": dict(writer.ends), "texts": writer.texts,
            "clips": index_clips, "bad": [list(b) for b in bad],
            "stats": {"all": _stats(moments.values()),
                      "train": _stats(m for i, m in moments.items() if split[i] == "train")},
            "mean_vel": MEAN_VEL_FILE if mean_vel is not None else None,
        }
        _write_json_atomic(out / INDEX, index)
    finally:
        lock.release()
    frames = sum(e["frames"][1] for e in entries)
    return PrepareReport(out, len(entries), kept, len(todo) - len(bad_ids), bad, frames,
                         time.perf_counter() - t0)


def _same_sources(entry: dict[str, Any], files, data_dir: Path) -> bool:
    now = {}
    for kind in ("motion", "audio", "textgrid"):
        p = getattr(files, kind)
        if p is not None:
            now[kind] = [os.path.relpath(p, data_dir.resolve()), *fingerprint(Path(p))]
    return now == entry["sources"]


def _moments_of(out: Path, entry: dict[str, Any]) -> FeatureMoments:
    dtype, width, _ = ARRAYS["moments"]
    with open(out / ARRAYS_DIR / "moments.bin", "rb") as f:
        f.seek(entry["row"] * width * np.dtype(dtype).itemsize)
        return FeatureMoments.from_array(np.frombuffer(f.read(width * np.dtype(dtype).itemsize), dtype))
