"""Held-out figures that tell whether a trained model learned an audio -> motion law that is
present in its data: the synthetic law of :mod:`livegesture.data.synthetic` (issue 12).

- token NLL with the audio, with the audio dropped (the null condition of classifier-free
  guidance) and of a "repeat the last token, else draw from the training unigram" baseline;
- beat consistency of motion generated from held-out audio, of the ground truth, and of a
  random clip (another clip's ground truth with this audio);
- speech -> silence -> speech: the wrist speed in the silence over that in the speech;
- (the tokenizer's reconstruction error: :func:`livegesture.tokenizer.report.report_tokenizer`).

Motion is generated with the model's own sampling settings (``bundle.config.sampling``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .body.constants import FPS
from .body.kinematics import forward_kinematics
from .data import ClipData, training_features
from .metrics import beat_consistency
from .metrics.beat import joint_speed


def clip_tokens(bundle, motion) -> dict[str, np.ndarray]:
    """Token ids per region of a whole clip through the bundle's tokenizers."""
    f = training_features(motion[:len(motion) // 4 * 4])
    with torch.no_grad():
        return {r: bundle.tokenizer[r].encode(torch.from_numpy(bundle.stats.normalize(r, f[r]))[None])[0].numpy()
                for r in bundle.tokenizer.regions}


def repeat_last_token_nll(bundle, held: Sequence, train: Sequence) -> dict[str, float]:
    """Per region, the held-out NLL (nats/token) of a two-parameter baseline: with probability lam the
    last token again, else a token of the training clips' unigram (add-0.5); lam fitted on the
    training clips. `held` and `train` are motions. Tokens repeat often at 7.5 Hz, so this is the
    floor an AR model must beat."""
    K = bundle.model.codebook_size
    tr = [clip_tokens(bundle, m) for m in train]
    te = [clip_tokens(bundle, m) for m in held]
    out = {}
    for r in bundle.tokenizer.regions:
        counts = np.bincount(np.concatenate([t[r] for t in tr]), minlength=K)
        p = (counts + 0.5) / (counts.sum() + 0.5 * K)

        def nll(seqs: list[np.ndarray], lam: float) -> float:
            return float(-np.concatenate([np.log(lam * (t[1:] == t[:-1]) + (1 - lam) * p[t[1:]])
                                          for t in seqs]).mean())

        lam = min(np.linspace(0.0, 0.95, 20), key=lambda v: nll([t[r] for t in tr], v))
        out[r] = nll([t[r] for t in te], lam)
    return out


def token_figures(bundle, held: Sequence[ClipData], train_motions: Sequence) -> dict[str, Any]:
    """Held-out token NLL of the experts, the fuse, the fuse without audio and the baseline."""
    from .train.ar_stage import heldout_token_nll, make_datasets

    _, ds = make_datasets(bundle.stats, bundle.vocab, list(held), list(held), bundle.config)
    nll = heldout_token_nll(bundle, ds, per_region=True)
    base = repeat_last_token_nll(bundle, [c.motion for c in held], train_motions)
    return {"windows": len(ds), **nll, "repeat_last_token": float(np.mean(list(base.values()))),
            "repeat_last_token_per_region": base}


def generate(bundle, audio: np.ndarray, seed: int):
    """Motion from 16 kHz audio with the model's own sampling settings (offline = streaming)."""
    with torch.no_grad():
        tokens = bundle.model.generate_tokens(torch.from_numpy(np.asarray(audio, np.float32))[None], seed=seed,
                                              sampling=bundle.config.sampling)
    return bundle.tokens_to_motion(tokens[0])


def mean_joint_speed(motions: Sequence) -> np.ndarray:
    """Mean speed per joint (55,) of motions: BC's normaliser when a data set ships none."""
    return np.concatenate([joint_speed(forward_kinematics(m, zero_trans=True), FPS) for m in motions]).mean(0)


def beat_figures(bundle, held: Sequence[ClipData], mean_vel: np.ndarray, seeds: Sequence[int] = (0, 1, 2)
                 ) -> dict[str, Any]:
    """BC (docs/design.md §8) of motion generated from each held-out clip's audio (per seed), of the
    ground truth, of the ground truth through the tokenizer (what any token sequence can reach), and
    of a random clip: clip k+1's ground truth with clip k's audio."""
    held = list(held)
    gen = []
    for seed in seeds:
        joints, audios = [], []
        for c in held:
            m = generate(bundle, c.audio, seed)
            n = min(len(m), len(c.motion))
            joints.append(forward_kinematics(m[:n], zero_trans=True))
            audios.append(c.audio)
        gen.append(beat_consistency(joints, audios, mean_vel=mean_vel))
    gt = beat_consistency([forward_kinematics(c.motion, zero_trans=True) for c in held],
                          [c.audio for c in held], mean_vel=mean_vel)
    rand_j, rand_a = [], []
    for k, c in enumerate(held):
        other = held[(k + 1) % len(held)].motion
        n = min(len(other), len(c.motion))
        rand_j.append(forward_kinematics(other[:n], zero_trans=True))
        rand_a.append(c.audio[:int(round(n / FPS * 16000))])
    rand = beat_consistency(rand_j, rand_a, mean_vel=mean_vel)
    # the ceiling the tokenizer leaves: the ground truth encoded to tokens and decoded again
    tok_j = []
    for c in held:
        tk = clip_tokens(bundle, c.motion)
        with torch.no_grad():
            m = bundle.tokens_to_motion(torch.stack([torch.from_numpy(tk[r]) for r in bundle.tokenizer.regions]).long())
        tok_j.append(forward_kinematics(m, zero_trans=True))
    tok = beat_consistency(tok_j, [c.audio for c in held], mean_vel=mean_vel)
    return {"generated": float(np.mean(gen)), "generated_per_seed": [float(g) for g in gen],
            "ground_truth": float(gt), "tokenized_ground_truth": float(tok), "random_clip": float(rand),
            "clips": len(held)}


def wrist_speed(motion) -> np.ndarray:
    """Mean speed (m/s) of the two wrists per frame step, root fixed (approximate skeleton)."""
    j = forward_kinematics(motion, zero_trans=True)
    return np.linalg.norm(np.diff(j[:, [20, 21]], axis=0), axis=-1).mean(-1) * FPS


def silence_figures(bundle, seeds: Sequence[int] = (0, 1, 2), utterances: Sequence[int] = (0, 1, 2),
                    speech_s: float = 4.0, silence_s: float = 4.0) -> dict[str, Any]:
    """Speech (speech_s) -> silence (silence_s) -> speech (speech_s), synthetic: the mean wrist speed
    over the whole silence and over the speech, of generated motion and of the law's own motion."""
    from .data.synthetic import render_speech, synthetic_motion, synthetic_syllables

    total = 2 * speech_s + silence_s
    n = int(round(total * FPS))
    t = np.arange(1, n) / FPS
    silent = (t >= speech_s) & (t < speech_s + silence_s)
    out: dict[str, list[float]] = {"gen_speech": [], "gen_silence": [], "gt_speech": [], "gt_silence": []}
    for u in utterances:
        syl = synthetic_syllables(total, seed=10_000 + u).without(speech_s, speech_s + silence_s)
        audio = render_speech(syl, total, seed=10_000 + u)
        gt = wrist_speed(synthetic_motion(n, seed=u, syllables=syl))
        out["gt_speech"].append(float(gt[~silent].mean()))
        out["gt_silence"].append(float(gt[silent].mean()))
        for seed in seeds:
            sp = wrist_speed(generate(bundle, audio, seed))
            k = min(len(sp), len(t))
            out["gen_speech"].append(float(sp[:k][~silent[:k]].mean()))
            out["gen_silence"].append(float(sp[:k][silent[:k]].mean()))
    res = {k: float(np.mean(v)) for k, v in out.items()}
    res["gen_ratio"] = res["gen_silence"] / res["gen_speech"]
    res["gt_ratio"] = res["gt_silence"] / res["gt_speech"]
    res["runs"] = len(out["gen_speech"])
    return res
