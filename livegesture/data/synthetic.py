"""Speech-like synthetic data in BEAT2 format, so that everything runs without the real files.

Audio: syllable-like bursts (a harmonic voiced tone with a wandering pitch plus noise,
attack/decay envelopes) grouped into phrases. Motion: arms down, smooth idle motion,
arm/hand strokes peaking at the syllable onsets, a jaw that opens on syllables.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..body.constants import FPS, NUM_BETAS, NUM_EXPRESSIONS, NUM_JOINTS, REGION_JOINTS
from ..motion import Motion
from .audio import SAMPLE_RATE
from .beat2 import LAYOUT, SPLIT_CSV

_CONSONANTS = ("B", "D", "G", "K", "L", "M", "N", "P", "R", "S", "T", "V")
_VOWELS = ("AA1", "AE1", "AH0", "EH1", "IY1", "OW1", "UW1")
_SYLLABLE_TEXT = {"B": "ba", "D": "do", "G": "gu", "K": "ki", "L": "lo", "M": "ma", "N": "ne",
                  "P": "pi", "R": "ru", "S": "so", "T": "ta", "V": "ve"}


@dataclass(frozen=True)
class _Syllables:
    onsets: np.ndarray    # seconds
    ends: np.ndarray      # seconds
    phrase: np.ndarray    # phrase index of each syllable


def _syllables(seconds: float, rng: np.random.Generator) -> _Syllables:
    """Phrases of 3-12 syllables (80-220 ms bursts, 40-140 ms gaps) split by 0.25-0.7 s pauses."""
    onsets, ends, phrase = [], [], []
    t, p = float(rng.uniform(0.2, 0.6)), 0
    while True:
        for _ in range(int(rng.integers(3, 13))):
            dur = float(rng.uniform(0.08, 0.22))
            if t + dur > seconds - 0.05:
                return _Syllables(np.array(onsets), np.array(ends), np.array(phrase, np.int64))
            onsets.append(t)
            ends.append(t + dur)
            phrase.append(p)
            t += dur + float(rng.uniform(0.04, 0.14))
        t += float(rng.uniform(0.25, 0.7))
        p += 1


def _render(syl: _Syllables, seconds: float, sample_rate: int,
            rng: np.random.Generator) -> np.ndarray:
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    # wandering pitch in [100, 220] Hz: slow sinusoids with random phases
    f0 = 160 + 35 * np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 2 * np.pi)) \
        + 20 * np.sin(2 * np.pi * 0.9 * t + rng.uniform(0, 2 * np.pi))
    f0 = np.clip(f0, 100, 220)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    out = rng.normal(0, 1e-3, n)  # faint background noise
    for on, end in zip(syl.onsets, syl.ends):
        a, b = int(on * sample_rate), min(int(end * sample_rate), n)
        k = b - a
        if k <= 0:
            continue
        # vowel colour: random weights on the first 12 harmonics (below Nyquist)
        weights = rng.uniform(0.2, 1.0, 12) / np.arange(1, 13)
        seg_phase = phase[a:b]
        voiced = np.zeros(k)
        for h, w in enumerate(weights, start=1):
            if h * 220 < sample_rate / 2:
                voiced += w * np.sin(h * seg_phase)
        noise = rng.normal(0, 1, k)
        st = np.arange(k) / sample_rate
        attack = np.minimum(st / rng.uniform(0.008, 0.02), 1.0)
        decay = np.exp(-st / (0.35 * k / sample_rate)) * np.clip((k - np.arange(k)) / (0.02 *
                                                                  sample_rate), 0, 1)
        consonant = np.exp(-st / 0.03)  # noisier start, like a consonant, under the same attack
        env = attack * decay
        out[a:b] += rng.uniform(0.5, 1.0) * env * (voiced + (0.1 + 0.4 * consonant) * noise)
    out /= max(np.abs(out).max(), 1e-9) / 0.5
    return out.astype(np.float32)


def synthetic_audio(seconds: float, sample_rate: int = SAMPLE_RATE,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio (float32, peak 0.5) and its syllable onset times in seconds."""
    rng = np.random.default_rng(seed)
    syl = _syllables(seconds, rng)
    return _render(syl, seconds, sample_rate, rng), syl.onsets.copy()


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, shape: tuple[int, ...],
                  fmin: float = 0.1, fmax: float = 1.0, n_sin: int = 3) -> np.ndarray:
    """Sum of `n_sin` random low-frequency sinusoids per element; unit-ish amplitude."""
    freqs = rng.uniform(fmin, fmax, (n_sin, *shape))
    phases = rng.uniform(0, 2 * np.pi, (n_sin, *shape))
    amps = rng.uniform(0.5, 1.0, (n_sin, *shape)) / n_sin
    tt = t.reshape(-1, *([1] * len(shape)))
    return sum(amps[i] * np.sin(2 * np.pi * freqs[i] * tt + phases[i]) for i in range(n_sin))


def synthetic_motion(n_frames: int, seed: int = 0, onsets: np.ndarray | None = None,
                     fps: float = FPS) -> Motion:
    """A plausible talking-person motion of `n_frames` frames (see the module doc)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    poses = np.zeros((n_frames, NUM_JOINTS, 3))
    # idle: small smooth noise on every joint, a bit larger on fingers
    scale = np.full(NUM_JOINTS, 0.03)
    scale[list(REGION_JOINTS["hands"])] = 0.06
    scale[[0, 1, 2, 4, 5, 7, 8, 10, 11]] = 0.015
    poses += _smooth_noise(rng, t, (NUM_JOINTS, 3)) * scale[:, None]
    # arms down at the sides (rest pose is a T-pose with arms along +-x)
    poses[:, 16, 2] += -1.2
    poses[:, 17, 2] += 1.2
    poses[:, 18, 1] += -0.3   # elbows slightly bent forward
    poses[:, 19, 1] += 0.3
    # body sway: slow rotation of pelvis and spine
    sway = _smooth_noise(rng, t, (3,), 0.05, 0.3)
    poses[:, 0] += 0.03 * sway
    poses[:, 3] += 0.02 * sway
    jaw_open = np.zeros(n_frames)
    if onsets is not None and len(onsets):
        onsets = np.asarray(onsets, float)
        for on in onsets:
            # jaw opens for ~150 ms after each syllable onset
            d = t - on
            jaw_open += np.where(d >= 0, np.exp(-0.5 * ((d - 0.08) / 0.06) ** 2), 0.0)
            # a stroke of one or both arms on some syllables, peaking at the onset
            if rng.random() < 0.6:
                bump = np.exp(-0.5 * ((t - on) / rng.uniform(0.1, 0.2)) ** 2)
                amp = rng.uniform(0.15, 0.45)
                sides = [(16, 18, 20, 25, -1)] if rng.random() < 0.4 else []
                sides += [(17, 19, 21, 40, 1)] if (not sides or rng.random() < 0.5) else []
                for sh, el, wr, hand0, sgn in sides:
                    poses[:, sh, 0] += -0.5 * amp * bump               # shoulder forward
                    poses[:, sh, 2] += -sgn * 0.3 * amp * bump          # arm lifts sideways
                    poses[:, el, 1] += sgn * amp * bump                 # elbow flexes
                    poses[:, wr, 0] += 0.5 * amp * rng.choice([-1, 1]) * bump
                    poses[:, hand0:hand0 + 15, 2] += sgn * 0.3 * amp * bump[:, None]  # fingers curl
    jaw_open = np.clip(jaw_open, 0, 1)
    poses[:, 22, 0] += 0.2 * jaw_open
    poses[:, 23:25] = 0.0  # eyes: identity
    # translation: near (0, 1.3, 0) with a slow drift
    trans = np.zeros((n_frames, 3))
    trans[:, 0] = 0.05 * _smooth_noise(rng, t, (), 0.01, 0.05)
    trans[:, 2] = 0.05 * _smooth_noise(rng, t, (), 0.01, 0.05)
    trans[:, 1] = 1.3 + 0.005 * _smooth_noise(rng, t, (), 0.05, 0.2)
    # expressions: small smooth noise decaying with index; coefficient 0 follows the jaw
    expr = _smooth_noise(rng, t, (NUM_EXPRESSIONS,), 0.1, 1.0) \
        * (0.3 / (1 + np.arange(NUM_EXPRESSIONS) / 10))
    expr[:, 0] += 0.8 * jaw_open
    return Motion(poses.astype(np.float32), trans.astype(np.float32), expr.astype(np.float32),
                  np.zeros(NUM_BETAS, np.float32), fps=fps)


def _lexicon(rng: np.random.Generator, per_length: int = 20) -> dict[int, list[list[str]]]:
    """Made-up words of 1-3 syllables; each word is a list of consonants (syllable keys)."""
    lex: dict[int, list[list[str]]] = {}
    for k in (1, 2, 3):
        words: list[list[str]] = []
        while len(words) < min(per_length, len(_CONSONANTS) ** k):
            w = [_CONSONANTS[int(i)] for i in rng.integers(len(_CONSONANTS), size=k)]
            if w not in words:
                words.append(w)
        lex[k] = words
    return lex


def _write_textgrid(path: Path, syl: _Syllables, duration: float,
                    lexicon: dict[int, list[list[str]]], rng: np.random.Generator) -> None:
    """'words' (one lexicon word per group of 1-3 syllables of a phrase, Zipf-distributed)
    and 'phones' (consonant + vowel per syllable) tiers, MFA style."""
    from praatio import textgrid

    words, phones = [], []
    i, n = 0, len(syl.onsets)
    while i < n:
        j = i + 1
        k = int(rng.integers(1, 4))
        while j < min(i + k, n) and syl.phrase[j] == syl.phrase[i]:
            j += 1
        candidates = lexicon[j - i]
        zipf = 1.0 / np.arange(1, len(candidates) + 1)
        word = candidates[int(rng.choice(len(candidates), p=zipf / zipf.sum()))]
        for s, c in zip(range(i, j), word):
            v = _VOWELS[int(rng.integers(len(_VOWELS)))]
            mid = syl.onsets[s] + 0.3 * (syl.ends[s] - syl.onsets[s])
            phones += [(syl.onsets[s], mid, c), (mid, syl.ends[s], v)]
        words.append((syl.onsets[i], syl.ends[j - 1], "".join(_SYLLABLE_TEXT[c] for c in word)))
        i = j
    tg = textgrid.Textgrid()
    for name, entries in (("words", words), ("phones", phones)):
        entries = [(round(float(a), 4), round(float(b), 4), lab) for a, b, lab in entries]
        tg.addTier(textgrid.IntervalTier(name, entries, 0.0, duration))
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def write_synthetic_beat2(out: str | os.PathLike, n_clips: int = 4, seconds: float = 20.0,
                          seed: int = 0) -> list[Path]:
    """Write a BEAT2-layout data set of `n_clips` clips and return the motion npz paths.

    Ids are ``2_scott_0_{i}_{i}``; the last clip is 'test', the one before 'val' (when
    there are 3 or more), the rest 'train'. As in BEAT2, motion and audio lengths differ
    by a few frames (either way) so that readers must crop.
    """
    if n_clips < 1:
        raise ValueError(f"n_clips must be >= 1, got {n_clips}")
    if seconds <= 0.5:
        raise ValueError(f"seconds must be > 0.5, got {seconds}")
    out = Path(out)
    dirs = {k: out / sub for k, (sub, _) in LAYOUT.items()}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    rows, paths = [], []
    lexicon = _lexicon(np.random.default_rng([seed, 0]))
    for i in range(1, n_clips + 1):
        cid = f"2_scott_0_{i}_{i}"
        rng = np.random.default_rng([seed, i])
        syl = _syllables(seconds, rng)
        audio = _render(syl, seconds, SAMPLE_RATE, rng)
        n_frames = int(round(seconds * FPS)) + (-3, 0, 2)[i % 3]
        motion = synthetic_motion(n_frames, seed=int(rng.integers(2 ** 31)), onsets=syl.onsets)
        paths.append(motion.save(dirs["motion"] / f"{cid}.npz"))
        sf.write(dirs["audio"] / f"{cid}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
        _write_textgrid(dirs["textgrid"] / f"{cid}.TextGrid", syl, len(audio) / SAMPLE_RATE,
                        lexicon, rng)
        split = "test" if i == n_clips else "val" if (n_clips >= 3 and i == n_clips - 1) \
            else "train"
        rows.append((cid, split))
    with open(out / SPLIT_CSV, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "type"])
        w.writerows(rows)
    return paths
