"""Speech-like synthetic data in BEAT2 format with an explicit audio -> motion law.

Audio: phrases of 2-6 syllable-like bursts (a harmonic voiced tone with a wandering pitch
plus noise, attack/decay envelopes) split by 0.8-2 s pauses. Each syllable has a
loudness g in [0.25, 1]: its peak amplitude is exactly 0.5 g.

Motion follows :class:`SpeechMotionLaw`, which is causal in the audio (frame t depends only
on syllables whose onset is at or before t), so that a zero-look-ahead model can learn it:

- every syllable starts a stroke of size g: the kernel k(d) = (d/tau) exp(1 - d/tau) of the
  time d since its onset (0 before it, 1 at d = tau), on both arms (the right one larger),
  the fingers, and a nod of the spine, neck and head;
- the "gesture space": arms lift and elbows bend with the speech activity, a low-pass of the
  loudness envelope (fast attack, slow release), so that the hands go to rest in silence;
- the jaw opens on each syllable by g times a shorter kernel; expression 0 follows the jaw,
  expression 1 the activity; the pelvis leans in with the activity;
- the legs bounce with the strokes (hips, knees, ankles);
- on top: small smooth idle noise on every joint (smaller on the pelvis and legs), slow body
  sway and a translation drift (the part no audio explains).
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
#: peak amplitude of a syllable of loudness 1
PEAK = 0.5


@dataclass(frozen=True)
class SpeechMotionLaw:
    """How synthetic motion follows the synthetic speech (see the module doc); angles in radians."""

    stroke_tau: float = 0.1        # s: the fast part of a stroke peaks this long after the onset
    stroke_slow_tau: float = 0.25  # s: ... its slow part this long (two time scales: the joints
                                   # slow down at the apex of the fast part but do not stop there)
    stroke_arm: float = 0.5        # elbow flexion of a loudness-1 stroke (right arm; left 0.6x)
    stroke_fingers: float = 0.3    # finger curl of a loudness-1 stroke
    # head pitch of a loudness-1 stroke (pelvis and spine 0.3x, neck 0.5x): with 0.08 the trunk's
    # beats (pelvis 1.4 deg) were below what 4-frame tokens keep; a study (upper + lower tokenizers,
    # 20 clips): the ground truth's BC through them 0.342 vs 0.516 with 0.08, 0.437 vs 0.467 with 0.2
    stroke_nod: float = 0.2
    jaw_tau: float = 0.07          # s
    jaw_open: float = 0.25         # jaw pitch of a loudness-1 syllable
    attack: float = 0.1            # s: time constant of the activity rising with loudness
    release: float = 0.4           # s: ... and falling in silence
    lift: float = 0.5              # shoulder lift at activity 1
    bend: float = 0.7              # elbow bend at activity 1
    # the lower body moves with the speech clearly enough for its tokenizer to follow: with a weak
    # lower-body law (lean 0.05, bounce 0.03) and idle noise of 0.01 there, the pelvis tokens' error,
    # which turns the whole upper body, cost the ground truth through the tokenizer 0.15 of its BC
    lean: float = 0.12             # pelvis pitch at activity 1
    bounce: float = 0.08           # hip / ankle pitch of a loudness-1 stroke (knees twice)
    idle: float = 0.01             # idle noise amplitude (hands twice)
    idle_lower: float = 0.003      # idle noise of the pelvis and legs
    idle_face: float = 0.02        # idle noise of the expression coefficients


LAW = SpeechMotionLaw()


@dataclass(frozen=True)
class Syllables:
    """Syllable timing (seconds), loudness in [0.25, 1] and phrase index of each syllable."""

    onsets: np.ndarray
    ends: np.ndarray
    loudness: np.ndarray
    phrase: np.ndarray

    def without(self, start: float, end: float) -> "Syllables":
        """The syllables that do not overlap [start, end) (a silence cut into the speech)."""
        keep = (self.ends <= start) | (self.onsets >= end)
        return Syllables(self.onsets[keep], self.ends[keep], self.loudness[keep], self.phrase[keep])


LONG_PAUSE_S = (2.5, 5.0)  # the range of the optional long pauses between phrases


def synthetic_syllables(seconds: float, seed: int | np.random.Generator = 0,
                        long_pauses: float = 0.0) -> Syllables:
    """Phrases of 2-6 syllables (100-220 ms bursts, 150-300 ms gaps, loudness = phrase level x
    0.7-1.0) split by 0.8-2 s pauses (sparse enough that BC tells matched from random motion).
    `long_pauses`: the share of pauses drawn from ``LONG_PAUSE_S`` instead, so that the data show
    hands coming to rest in longer silences (0: none, and the same draws as without it)."""
    if not 0.0 <= long_pauses <= 1.0:
        raise ValueError(f"long_pauses must be in [0, 1], got {long_pauses}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    onsets, ends, loud, phrase = [], [], [], []
    t, p = float(rng.uniform(0.2, 0.6)), 0
    while True:
        level = float(rng.uniform(0.35, 1.0))
        for _ in range(int(rng.integers(2, 7))):
            dur = float(rng.uniform(0.10, 0.22))
            if t + dur > seconds - 0.05:
                return Syllables(np.array(onsets), np.array(ends), np.array(loud),
                                 np.array(phrase, np.int64))
            onsets.append(t)
            ends.append(t + dur)
            loud.append(max(0.25, level * float(rng.uniform(0.7, 1.0))))
            phrase.append(p)
            t += dur + float(rng.uniform(0.15, 0.3))
        pause = float(rng.uniform(0.8, 2.0))
        if long_pauses > 0 and rng.uniform() < long_pauses:
            pause = float(rng.uniform(*LONG_PAUSE_S))
        t += pause
        p += 1


def render_speech(syl: Syllables, seconds: float, sample_rate: int = SAMPLE_RATE,
                  seed: int | np.random.Generator = 0) -> np.ndarray:
    """The waveform (float32) of `syl`: each syllable peaks at exactly PEAK x its loudness."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    # wandering pitch in [100, 220] Hz: slow sinusoids with random phases
    f0 = 160 + 35 * np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 2 * np.pi)) \
        + 20 * np.sin(2 * np.pi * 0.9 * t + rng.uniform(0, 2 * np.pi))
    f0 = np.clip(f0, 100, 220)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    out = rng.normal(0, 1e-3, n)  # faint background noise
    for on, end, g in zip(syl.onsets, syl.ends, syl.loudness):
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
        burst = attack * decay * (voiced + (0.1 + 0.4 * consonant) * noise)
        out[a:b] += burst * (PEAK * g / max(np.abs(burst).max(), 1e-9))
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def synthetic_audio(seconds: float, sample_rate: int = SAMPLE_RATE,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio (float32, syllable peaks 0.5 x loudness) and its syllable onsets (s)."""
    rng = np.random.default_rng(seed)
    syl = synthetic_syllables(seconds, rng)
    return render_speech(syl, seconds, sample_rate, rng), syl.onsets.copy()


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, shape: tuple[int, ...],
                  fmin: float = 0.1, fmax: float = 1.0, n_sin: int = 3) -> np.ndarray:
    """Sum of `n_sin` random low-frequency sinusoids per element; unit-ish amplitude."""
    freqs = rng.uniform(fmin, fmax, (n_sin, *shape))
    phases = rng.uniform(0, 2 * np.pi, (n_sin, *shape))
    amps = rng.uniform(0.5, 1.0, (n_sin, *shape)) / n_sin
    tt = t.reshape(-1, *([1] * len(shape)))
    return sum(amps[i] * np.sin(2 * np.pi * freqs[i] * tt + phases[i]) for i in range(n_sin))


def _kernel(t: np.ndarray, onsets: np.ndarray, gains: np.ndarray, tau: float) -> np.ndarray:
    """sum_s g_s k((t - onset_s) / tau), k(x) = x e^(1 - x) for x >= 0 (causal, peak 1 at x = 1)."""
    out = np.zeros(len(t))
    for on, g in zip(onsets, gains):
        x = (t - on) / tau
        live = x >= 0
        out[live] += g * x[live] * np.exp(1.0 - x[live])
    return out


def speech_activity(t: np.ndarray, syl: Syllables, law: SpeechMotionLaw = LAW) -> np.ndarray:
    """The activity at times `t` (s, evenly spaced): a causal asymmetric first-order low-pass of
    the loudness envelope (loudness inside a syllable, 0 elsewhere)."""
    env = np.zeros(len(t))
    for on, end, g in zip(syl.onsets, syl.ends, syl.loudness):
        env[(t >= on) & (t < end)] = g
    dt = float(t[1] - t[0]) if len(t) > 1 else 1.0 / FPS
    up, down = 1 - np.exp(-dt / law.attack), 1 - np.exp(-dt / law.release)
    out, a = np.zeros(len(t)), 0.0
    for i, e in enumerate(env):
        a += (up if e > a else down) * (e - a)
        out[i] = a
    return out


def synthetic_motion(n_frames: int, seed: int = 0, onsets: np.ndarray | None = None,
                     fps: float = FPS, syllables: Syllables | None = None,
                     law: SpeechMotionLaw = LAW) -> Motion:
    """A talking-person motion of `n_frames` frames that follows `syllables` by `law` (see the
    module doc). Bare `onsets` stand for 150 ms syllables of loudness 1; neither: idle motion."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    if syllables is None:
        on = np.zeros(0) if onsets is None else np.asarray(onsets, float)
        syllables = Syllables(on, on + 0.15, np.ones(len(on)), np.zeros(len(on), np.int64))
    poses = np.zeros((n_frames, NUM_JOINTS, 3))
    # idle: small smooth noise on every joint, larger on fingers
    scale = np.full(NUM_JOINTS, law.idle)
    scale[list(REGION_JOINTS["hands"])] = 2 * law.idle
    scale[list(REGION_JOINTS["lower"])] = law.idle_lower
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
    fast = _kernel(t, syllables.onsets, syllables.loudness, law.stroke_tau)
    slow = _kernel(t, syllables.onsets, syllables.loudness, law.stroke_slow_tau)
    jaw = np.clip(_kernel(t, syllables.onsets, syllables.loudness, law.jaw_tau), 0, 1)
    act = speech_activity(t, syllables, law) if n_frames else np.zeros(0)
    # gesture space and strokes; left arm (sign -1) and right arm (+1), the right one leads
    a = law.stroke_arm
    for co, sh, el, wr, hand0, sgn, share in ((13, 16, 18, 20, 25, -1, 0.6), (14, 17, 19, 21, 40, 1, 1.0)):
        f, s = share * fast, share * slow
        poses[:, co, 2] += -sgn * 0.1 * a * (f + s)                       # shoulder shrug
        poses[:, sh, 2] += -sgn * law.lift * act                          # arm lifts sideways
        poses[:, sh, 0] += -0.4 * law.lift * act - 0.6 * a * s            # and forward
        poses[:, el, 1] += sgn * (law.bend * act + a * f + 0.3 * a * s)   # elbow flexes
        poses[:, wr, 0] += 0.6 * a * f                                    # wrist beats
        poses[:, hand0:hand0 + 15, 2] += (sgn * law.stroke_fingers * f)[:, None]  # fingers curl
    # the body rocks with each stroke: pelvis, spine and neck on both time scales, the head nods
    for j, share in ((0, 0.3), (3, 0.3), (6, 0.3), (9, 0.5), (12, 0.5), (15, 1.0)):
        poses[:, j, 0] += share * law.stroke_nod * (fast + 0.5 * slow)
    # the legs bounce with the strokes (hips, knees, ankles) and the pelvis leans in while speaking
    for j, share in ((1, -1.0), (2, -1.0), (4, 2.0), (5, 2.0), (7, -1.0), (8, -1.0)):
        poses[:, j, 0] += share * law.bounce * slow
    poses[:, 0, 0] += law.lean * act
    poses[:, 22, 0] += law.jaw_open * jaw
    poses[:, 23:25] = 0.0  # eyes: identity
    # translation: near (0, 1.3, 0) with a slow drift
    trans = np.zeros((n_frames, 3))
    trans[:, 0] = 0.05 * _smooth_noise(rng, t, (), 0.01, 0.05)
    trans[:, 2] = 0.05 * _smooth_noise(rng, t, (), 0.01, 0.05)
    trans[:, 1] = 1.3 + 0.005 * _smooth_noise(rng, t, (), 0.05, 0.2)
    # expressions: a talking face, a fixed mix of the jaw and the activity over every coefficient
    # (0 follows the jaw, 1 the activity), plus small idle noise
    k = np.arange(NUM_EXPRESSIONS)
    mouth = np.cos(0.9 * k) / (1 + k / 10)
    brows = np.sin(0.9 * k + 1.5) / (1 + k / 10)
    mouth[1], brows[0] = 0.0, 0.0
    expr = _smooth_noise(rng, t, (NUM_EXPRESSIONS,), 0.1, 1.0) * (law.idle_face / (1 + k / 10))
    expr += 0.8 * jaw[:, None] * mouth + 0.5 * act[:, None] * brows
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


def _write_textgrid(path: Path, syl: Syllables, duration: float,
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
                          seed: int = 0, long_pauses: float = 0.0) -> list[Path]:
    """Write a BEAT2-layout data set of `n_clips` clips and return the motion npz paths
    (`long_pauses`: see :func:`synthetic_syllables`).

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
        syl = synthetic_syllables(seconds, rng, long_pauses)
        audio = render_speech(syl, seconds, SAMPLE_RATE, rng)
        n_frames = int(round(seconds * FPS)) + (-3, 0, 2)[i % 3]
        motion = synthetic_motion(n_frames, seed=int(rng.integers(2 ** 31)), syllables=syl)
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
