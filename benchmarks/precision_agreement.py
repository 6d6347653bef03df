"""What the int8 model step costs in agreement with float32, and what it buys (issue 13).

On a held-out clip's audio (default: BEAT2 ``2_scott_0_2_2``, which the bundled model never trained
on), one process measures:

* **teacher-forced token agreement**: at every token, the float32 and the int8 step see the same
  history (float32's tokens) and audio and draw with the same uniforms; the share of (token, region)
  draws that come out the same, and the mean KL divergence of the guided distributions at the
  sampling temperature (before top-k / top-p);
* **free-running agreement**: each precision generates on its own from the same seed; the share of
  equal tokens and where the streams first part (after which they are two different samples);
* **decoder difference**: float32's tokens through the float32 and the int8 decoders (joint angles);
* **evaluation figures** of each precision's generated clip under ``--protocol beat2`` (BC, L1div;
  FGD with ``--extractor``), beside the ground truth, as ``livegesture evaluate`` computes them;
* **step and decode time** of both precisions alternated in one process (batch 1, guidance on), and
  the bytes each step reads.

    OMP_NUM_THREADS=1 python benchmarks/precision_agreement.py --data ../shared/data/beat2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from livegesture.bench import bench_step, random_bundle, step_read_bytes
from livegesture.bundle import ModelBundle
from livegesture.data import find_clips, load_clip
from livegesture.model.config import FRAMES_PER_TOKEN
from livegesture.model.sampling import TokenSampler, sample_from_logits


def teacher_forced(models: dict, audio: torch.Tensor, sampling, seed: int) -> dict[str, float]:
    """Float32 generates; int8 steps on float32's history with the same uniforms (`models`: one loaded
    model per precision)."""
    states = {p: m.init_state(1, guidance=sampling.guided) for p, m in models.items()}
    f = models["float32"].encode_audio(audio[None], states["float32"])  # the audio encoder has no int8 path
    feats = {p: f for p in models}
    sampler = TokenSampler(sampling, [seed])
    prev = models["float32"].bos_inputs(1)
    same, total, kls, history = 0, 0, [], []
    for tau in range(feats["float32"].shape[1] // FRAMES_PER_TOKEN):
        sl = slice(FRAMES_PER_TOKEN * tau, FRAMES_PER_TOKEN * (tau + 1))
        logits = {p: m.step(states[p], feats[p][:, sl], prev, sampling.guidance_scale)[:, :, 0]
                  for p, m in models.items()}
        u = sampler.uniforms(models["float32"].num_regions)
        tok = {p: sample_from_logits(v, sampling, u) for p, v in logits.items()}
        same += int((tok["float32"] == tok["int8"]).sum())
        total += tok["float32"].numel()
        lp = {p: torch.log_softmax(v.double() / sampling.temperature, -1) for p, v in logits.items()}
        kls.append(float((lp["float32"].exp() * (lp["float32"] - lp["int8"])).sum(-1).mean()))
        prev = tok["float32"][:, :, None]
        history.append(prev)
    return {"tokens": total, "agreement": same / total, "kl_mean": statistics.fmean(kls),
            "float32_tokens": torch.cat(history, dim=-1)[0]}


def decoder_difference(bundle, tokens: torch.Tensor) -> dict[str, float]:
    """The same tokens (R, T) through the float32 and the int8 grouped decoders: the angle between the
    two poses of every joint and frame (degrees) and the root translation difference (m)."""
    from livegesture.body.constants import REGIONS
    from livegesture.body.rotations import axis_angle_to_matrix
    from livegesture.motion import Motion
    from livegesture.tokenizer.grouped import GroupedDecoder

    motions = {}
    for p in ("float32", "int8"):
        dec = GroupedDecoder(bundle.tokenizer)
        dec.set_precision(p)
        st = dec.init_state(1)
        parts = [dec.decode(tokens[None, :, t:t + 1], st) for t in range(tokens.shape[1])]
        feats = {r: bundle.stats.denormalize(r, torch.cat([q[i] for q in parts], dim=1)[0].numpy())
                 for i, r in enumerate(REGIONS)}
        motions[p] = Motion.from_regions(feats)
    a, b = (torch.from_numpy(motions[p].poses).double() for p in ("float32", "int8"))
    ra, rb = axis_angle_to_matrix(a), axis_angle_to_matrix(b)
    cos = ((ra.transpose(-1, -2) @ rb).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    ang = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
    return {"mean_deg": float(ang.mean()), "p99_deg": float(torch.quantile(ang.flatten(), 0.99)),
            "max_deg": float(ang.max())}


def free_running(models: dict, audio: torch.Tensor, sampling, seed: int) -> dict[str, float]:
    out = {p: m.generate_tokens(audio[None], seed, sampling=sampling)[0] for p, m in models.items()}
    eq = (out["float32"] == out["int8"])
    diff = (~eq).any(0).nonzero()
    return {"agreement": float(eq.float().mean()), "first_difference_token": int(diff[0]) if len(diff) else -1,
            "tokens": int(eq.shape[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="BEAT2 folder (the held-out clip's audio and motion)")
    ap.add_argument("--model", default=None, help="model file (default: the bundled demo model)")
    ap.add_argument("--ids", default="2_scott_0_2_2", help="held-out clip id(s), comma-separated")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--extractor", default=None, help="FGD extractor (AESKConv_240_100.bin) for FGD")
    ap.add_argument("--size", default="base", help="random model size for the step timing (demo | base)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    from livegesture.assets import demo_model_path
    from livegesture.evaluate import evaluate_model

    path = a.model or demo_model_path()
    models = {}
    for p in ("float32", "int8"):
        bundle = ModelBundle.load(path)
        models[p] = bundle.model.eval()
        models[p].set_inference_precision(p)
        models[p].freeze_inference_weights()
    sampling = bundle.config.sampling
    ids = [s for s in a.ids.split(",") if s]
    print(f"model {path}; held-out clip(s) {', '.join(ids)}; sampling {sampling}")
    with torch.inference_mode():
        for clip in find_clips(a.data, ids=ids):
            audio = torch.from_numpy(load_clip(clip).audio)
            for seed in range(a.seeds):
                tf = teacher_forced(models, audio, sampling, seed)
                fr = free_running(models, audio, sampling, seed)
                dd = decoder_difference(bundle, tf["float32_tokens"])
                print(f"{clip.id} seed {seed}: teacher-forced agreement {100 * tf['agreement']:.2f}% of "
                      f"{tf['tokens']} draws, mean KL {tf['kl_mean']:.2e} nats; free-running agreement "
                      f"{100 * fr['agreement']:.1f}% of {fr['tokens']} tokens, first difference at token "
                      f"{fr['first_difference_token']}; the same tokens decoded in int8: joint angle off by "
                      f"{dd['mean_deg']:.3f} deg on average, p99 {dd['p99_deg']:.3f}, max {dd['max_deg']:.3f}")
    for seed in range(a.seeds):
        rows = {}
        for p in ("float32", "int8"):
            r = evaluate_model(a.model, a.data, ids=ids, seed=seed, extractor=a.extractor, progress=False,
                               precision=p)
            rows[p] = r["rows"]
        gt = rows["float32"]["ground_truth"]
        line = "  ".join(f"{p}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[p]["generated"].items()
                                               if isinstance(v, float)) for p in rows)
        print(f"evaluate (protocol beat2) seed {seed}: {line}; ground truth BC {gt['bc']:.4f}, "
              f"L1div {gt['l1div']:.4f}")
    for size in (a.size,):
        from livegesture.tokenizer.grouped import GroupedDecoder

        rb = random_bundle(size)
        ms, decs = {}, {}
        for p in ("float32", "int8"):
            ms[p] = random_bundle(size).model
            ms[p].set_inference_precision(p)
            ms[p].freeze_inference_weights()
            decs[p] = GroupedDecoder(rb.tokenizer)
            decs[p].set_precision(p)
        ids = torch.randint(rb.model.codebook_size, (1, 4, 60), generator=torch.Generator().manual_seed(0))
        times: dict[str, list[float]] = {"float32": [], "int8": []}
        dtimes: dict[str, list[float]] = {"float32": [], "int8": []}
        read = {p: step_read_bytes(m) for p, m in ms.items()}
        with torch.inference_mode():
            for _ in range(3):
                for p in times:
                    times[p].append(bench_step(ms[p], iters=30, bandwidth=False).cached_ms)
                    st = decs[p].init_state(1)
                    for t in range(ids.shape[2]):
                        t0 = time.perf_counter()
                        decs[p].decode(ids[:, :, t:t + 1], st)
                        if t >= 10:
                            dtimes[p].append(1e3 * (time.perf_counter() - t0))
        f32, i8 = statistics.median(times["float32"]), statistics.median(times["int8"])
        d32, d8 = statistics.median(dtimes["float32"]), statistics.median(dtimes["int8"])
        print(f"random '{size}' model, batch 1, guidance on, 1 thread, 3 alternated rounds: KV-cached step "
              f"float32 {f32:.2f} ms ({read['float32'] / 1e6:.1f} MB read), int8 {i8:.2f} ms "
              f"({read['int8'] / 1e6:.1f} MB read): {f32 / i8:.2f}x; decoding one token float32 {d32:.2f} ms, "
              f"int8 {d8:.2f} ms: {d32 / d8:.2f}x")

if __name__ == "__main__":
    main()
