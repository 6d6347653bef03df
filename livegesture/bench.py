"""`livegesture bench`: real-time figures of the streaming engine (issue #5).

Everything goes through the public engine API (:class:`LiveGesture`, ``stream``, ``push``,
``stream_batch``); only the KV-cache figure calls :meth:`LiveGestureModel.step` directly,
because "recompute the window" is not something the engine ever does.

Simulated real time, computed *virtually* from measured compute times (no sleeping): audio
is cut into packets of ``packet_ms`` (20 ms); packet i is complete at ``a_i = (i+1) * packet``
(seconds since the speech started). Pushes run back to back and each one is timed
(``d_i``); a single-server queue gives its finish time ``f_i = max(a_i, f_{i-1}) + d_i``
(a push cannot start before its audio exists nor before the previous push ended). Frame
``t`` returned by push i is emitted at ``f_i``; its audio-to-frame latency is
``f_i - t/30``: from the moment the audio at the frame's start was spoken to the frame's
emission, so it contains the token period (133 ms for a token's first frame, 33 ms for
its last, by the zero look-ahead contract), the packetisation wait (< 20 ms) and
compute/queueing. ``pace=True`` sleeps until ``a_i`` before each push instead (wall-clock
real time, slower; the same formulas with measured times).

Why virtual by default: the bench then takes the compute time, not the audio duration,
and a sleeping process's caches go cold, which the paced mode shows if it matters.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .body.constants import FPS, REGION_DIMS, REGIONS
from .bundle import ModelBundle
from .data.audio import SAMPLE_RATE
from .engine import LiveGesture
from .errors import LiveGestureError

__all__ = ["BenchResult", "ParallelResult", "StreamResult", "StepResult", "percentile", "random_bundle",
           "bench_stream", "bench_step", "bench_parallel", "memory_bandwidth_gbs", "simulate_queue",
           "step_read_bytes", "format_report"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation, numpy's default); NaN for no values."""
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else float("nan")


def random_bundle(size: str = "demo", seed: int = 0, overrides: dict | None = None) -> ModelBundle:
    """A randomly initialised model of preset `size` (demo / base): same shapes, hence the same compute,
    as a trained one; its motion is meaningless. Normalisation stats are mean 0, std 1."""
    from .tokenizer import MotionTokenizer
    from .data.features import RegionStats
    from .train.config import load_experiment

    cfg = load_experiment(size, overrides)
    stats = RegionStats({r: np.zeros(REGION_DIMS[r], np.float32) for r in REGIONS},
                        {r: np.ones(REGION_DIMS[r], np.float32) for r in REGIONS})
    torch.manual_seed(seed)
    b = ModelBundle.create(cfg, MotionTokenizer(cfg.tokenizer), stats)
    b.model.eval()
    b.tokenizer.eval()
    return b


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (getrusage; kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def simulate_queue(arrivals: Sequence[float], durations: Sequence[float]) -> np.ndarray:
    """Finish times of jobs on one server: ``f_i = max(a_i, f_{i-1}) + d_i``."""
    out = np.empty(len(arrivals))
    f = -np.inf
    for i, (a, d) in enumerate(zip(arrivals, durations)):
        f = max(a, f) + d
        out[i] = f
    return out


def per_window(durations: Sequence[float], packets_per_window: int) -> list[float]:
    """Compute summed over each complete window of `packets_per_window` consecutive packets."""
    n = len(durations) // packets_per_window
    d = np.asarray(durations[:n * packets_per_window], np.float64)
    return d.reshape(n, packets_per_window).sum(1).tolist() if n else []


@dataclass(frozen=True)
class StreamResult:
    """One session, packet by packet (times in milliseconds)."""

    audio_s: float
    packets: int
    frames: int
    window_ms: float
    compute_p50: float
    compute_p95: float
    compute_p99: float
    compute_max: float
    rtf: float
    latency_p50: float
    latency_p95: float
    latency_max: float
    first_frame_latency: float
    state_bytes: int
    rss_before: int
    rss_after: int
    peak_rss: int
    paced: bool
    #: p95 latency of the same frames emitted at their packets' arrival (no compute): the floor that the
    #: packet grid and the token period set (146.7 ms for 20 ms packets: a token ending just after a
    #: packet boundary waits for the next packet)
    latency_floor_p95: float = float("nan")


@dataclass(frozen=True)
class StepResult:
    """One KV-cached model step vs. recomputing the window (milliseconds, whole batch), and the
    step's memory floor: the bytes it must read (weights and KV caches) over the memory bandwidth
    measured in the same process (0 when not measured)."""

    batch: int
    window_tokens: int
    cached_ms: float
    recompute_ms: float
    read_bytes: int = 0
    bandwidth_gbs: float = 0.0
    #: the KV-cached step ran as one compiled program (engine/compiled.py)
    compiled: bool = False
    #: the compiled program's float32 products ran on the streaming kernel (model/stream_kernel.py)
    kernel: bool = False
    #: median KV-cached step in a run of consecutive steps (no recompute in between, as in a stream,
    #: whose encoder and decoder touch far less memory than a window recompute): a model whose weights
    #: fit in the caches keeps them warm here, while ``cached_ms`` sees them evicted by the recompute
    run_ms: float = float("nan")
    #: the window recompute ran as a compiled program too (the same mode as the step: what
    #: ``speedup`` then compares)
    recompute_compiled: bool = False

    @property
    def speedup(self) -> float:
        return self.recompute_ms / self.cached_ms

    @property
    def floor_ms(self) -> float:
        return 1e3 * self.read_bytes / (1e9 * self.bandwidth_gbs) if self.bandwidth_gbs > 0 else float("nan")

    @property
    def floor_ratio(self) -> float:
        """KV-cached step (alternated with the recompute) / memory floor (1 = as fast as reading its
        bytes once)."""
        return self.cached_ms / self.floor_ms

    @property
    def run_floor_ratio(self) -> float:
        """The step in a run of steps / memory floor."""
        return self.run_ms / self.floor_ms


@dataclass(frozen=True)
class ParallelResult:
    """A lockstep batch of n sessions: compute per window of audio (ms)."""

    sessions: int
    compute_p50: float
    compute_p99: float
    rtf: float
    real_time: bool


@dataclass
class BenchResult:
    model: str
    threads: int
    guidance: bool
    stream: StreamResult | None = None
    step: StepResult | None = None
    parallel: list[ParallelResult] = field(default_factory=list)
    #: 1-minute load average and CPU count (set when the figures were taken)
    load: tuple[float, int] = field(default_factory=lambda: load_average())
    #: the step's matrix products (float32, or int8: weight-only int8)
    precision: str = "float32"
    #: the one-row cores ran the compiled step (engine/compiled.py); batched sessions stay eager
    compiled: bool = False

    @property
    def max_sessions(self) -> int:
        ok = [p.sessions for p in self.parallel if p.real_time]
        return max(ok) if ok else 0

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.step is not None:
            d["step"].update(speedup=self.step.speedup, floor_ms=self.step.floor_ms,
                             floor_ratio=self.step.floor_ratio, run_floor_ratio=self.step.run_floor_ratio)
        d["max_sessions"] = self.max_sessions
        return d


def load_average() -> tuple[float, int]:
    """(1-minute load average, CPU count): other processes on the machine slow every figure."""
    try:
        return float(os.getloadavg()[0]), int(os.cpu_count() or 0)
    except (OSError, AttributeError):
        return float("nan"), int(os.cpu_count() or 0)


def _packets(audio: np.ndarray, packet: int) -> list[np.ndarray]:
    n = len(audio) // packet
    return [audio[i * packet:(i + 1) * packet] for i in range(n)]


def bench_stream(engine: LiveGesture, audio: np.ndarray, packet_ms: float = 20.0, window_ms: float = 200.0,
                 warmup_s: float = 1.0, seed: int = 0, pace: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> StreamResult:
    """Stream `audio` (16 kHz mono float32) through one session in `packet_ms` packets (module doc).

    The first `warmup_s` of audio is streamed on a separate session first (one-off allocations,
    lazy initialisation), so the figures describe the steady state of a session from its start."""
    packet = int(round(packet_ms * SAMPLE_RATE / 1000))
    per_win = int(round(window_ms / packet_ms))
    if packet < 1 or per_win < 1 or abs(per_win * packet_ms - window_ms) > 1e-6:
        raise LiveGestureError(f"window {window_ms} ms must be a whole number of {packet_ms} ms packets")
    pk = _packets(audio, packet)
    if len(pk) < per_win:
        raise LiveGestureError(f"{len(audio) / SAMPLE_RATE:.2f} s of audio is shorter than one {window_ms} ms window")
    warm = engine.stream(seed=seed + 1)
    for x in _packets(audio[:int(warmup_s * SAMPLE_RATE)], packet):
        warm.push(x)
    warm.close()
    del warm
    rss0 = rss_bytes()
    session = engine.stream(seed=seed)
    durations, counts, finish_wall = [], [], []
    t_start = clock()
    for i, x in enumerate(pk):
        if pace:
            wait = t_start + (i + 1) * packet / SAMPLE_RATE - clock()
            if wait > 0:
                time.sleep(wait)
        t0 = clock()
        m = session.push(x)
        t1 = clock()
        durations.append(t1 - t0)
        finish_wall.append(t1 - t_start)
        counts.append(len(m))
    session.close()
    arrivals = (np.arange(len(pk)) + 1) * packet / SAMPLE_RATE
    finish = np.asarray(finish_wall) if pace else simulate_queue(arrivals, durations)
    lat, floor = [], []
    t = 0
    for a_i, f_i, c in zip(arrivals, finish, counts):
        for _ in range(c):
            lat.append(f_i - t / FPS)
            floor.append(a_i - t / FPS)
            t += 1
    if t != session.frames_emitted:
        raise RuntimeError(f"counted {t} frames, the session says {session.frames_emitted}")
    win = [1e3 * w for w in per_window(durations, per_win)]
    lat_ms = [1e3 * v for v in lat]
    audio_s = len(pk) * packet / SAMPLE_RATE
    return StreamResult(
        audio_s=audio_s, packets=len(pk), frames=t, window_ms=window_ms,
        compute_p50=percentile(win, 50), compute_p95=percentile(win, 95), compute_p99=percentile(win, 99),
        compute_max=max(win), rtf=float(np.sum(durations)) / audio_s,
        latency_p50=percentile(lat_ms, 50), latency_p95=percentile(lat_ms, 95),
        latency_max=max(lat_ms) if lat_ms else float("nan"),
        first_frame_latency=lat_ms[0] if lat_ms else float("nan"),
        state_bytes=session.state_nbytes(), rss_before=rss0, rss_after=rss_bytes(), peak_rss=peak_rss_bytes(),
        paced=pace, latency_floor_p95=percentile([1e3 * v for v in floor], 95))


def memory_bandwidth_gbs(nbytes: int = 256 * 2 ** 20, repeats: int = 7) -> float:
    """Read bandwidth of this process's threads in GB/s: the median time of summing a float32 tensor
    of `nbytes` (far larger than the caches), after one warm-up pass that faults its pages in."""
    x = torch.ones(nbytes // 4, dtype=torch.float32)
    x.sum()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        x.sum()
        times.append(time.perf_counter() - t0)
    return nbytes / statistics.median(times) / 1e9


def step_read_bytes(model, batch: int = 1, guidance: bool = True) -> int:
    """Bytes one KV-cached token step must bring in from memory: every weight it multiplies by (the
    experts' stacked copies the grouped step uses, the fuse, the heads; of the embedding tables only
    the rows it looks up) and the KV caches its attention reads (keys, values, positions of every
    ring of the `batch` sessions). Activations are small and stay in cache; they are not counted. With
    int8 products (:meth:`~livegesture.model.LiveGestureModel.set_inference_precision`) the int8 bytes
    are counted."""
    from .streaming.state import state_nbytes

    R, N = model.num_regions, batch * (2 if guidance else 1)
    weights = model.inference_weight_nbytes()  # float32 or int8 copies, whichever the step uses
    weights += R * N * model.config.dim * 4  # the looked-up embedding rows
    state = model.init_state(batch, guidance=guidance)
    return weights + state_nbytes(state["experts"]) + state_nbytes(state["fuse"])


def bench_step(model, batch: int = 1, iters: int = 30, guidance: bool = True, seed: int = 0,
               bandwidth: bool = True, step=None, window=None) -> StepResult:
    """Median time of one KV-cached ``step`` (1 token, every region and the fuse, guidance stream in the
    same call) on full caches vs. a fresh state fed the whole window of H tokens in one call (what a
    cache-less model pays per token), alternating the two so that both see the same machine load;
    and first the median of `iters` consecutive KV-cached steps (``run_ms``: the step as a stream
    runs it, without a recompute evicting the caches in between).

    `step`: the one-token step to time instead of ``model.step`` (a :class:`CompiledStep` of this
    batch size and guidance); `window`: the same for the recompute (a :class:`CompiledStep` of
    ``window_tokens`` positions), so that a compiled step is compared with a compiled recompute."""
    cfg = model.config
    H, K, da = cfg.window_tokens, cfg.codebook_size, cfg.audio.dim
    dev, dt = model.null_audio.device, model.null_audio.dtype
    g = torch.Generator(device="cpu").manual_seed(seed)
    warm = H + 4
    total = warm + 2 * iters + 4
    feats = torch.randn(batch, 4 * total, da, generator=g).to(dev, dt)
    toks = torch.randint(K, (batch, model.num_regions, total), generator=g).to(dev)
    scale = 1.5 if guidance else 1.0
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    one = model.step if step is None else step
    rec = model.step if window is None else window

    def timed(tau: int) -> float:
        """Seconds of one KV-cached step of token `tau` on `state`."""
        sync()
        t0 = time.perf_counter()
        one(state, feats[:, 4 * tau:4 * tau + 4], toks[:, :, tau:tau + 1], scale)
        sync()
        return time.perf_counter() - t0

    # the compiled program was traced on ordinary tensors under no_grad (inference tensors would recompile)
    with torch.inference_mode() if step is None else torch.no_grad():
        state = model.init_state(batch, guidance=guidance)
        for tau in range(warm):
            one(state, feats[:, 4 * tau:4 * tau + 4], toks[:, :, tau:tau + 1], scale)
        run = [timed(warm + i) for i in range(iters)]  # a run of steps, as a stream has them
        fresh = model.init_state(batch, guidance=guidance)
        rec(fresh, feats[:, :4 * H], toks[:, :, :H], scale)  # warm the long-call path
        cached, full = [], []
        for i in range(iters):
            tau = warm + iters + i
            cached.append(timed(tau))
            t0 = time.perf_counter()
            fresh = model.init_state(batch, guidance=guidance)
            rec(fresh, feats[:, 4 * (tau - H + 1):4 * (tau + 1)], toks[:, :, tau - H + 1:tau + 1], scale)
            sync()
            full.append(time.perf_counter() - t0)
    read = step_read_bytes(model, batch, guidance)
    bw = memory_bandwidth_gbs() if bandwidth else 0.0
    return StepResult(batch, H, 1e3 * statistics.median(cached), 1e3 * statistics.median(full), read, bw,
                      step is not None, bool(getattr(step, "kernel", False)), 1e3 * statistics.median(run),
                      window is not None)


def bench_parallel(engine: LiveGesture, audio: np.ndarray, sizes: Sequence[int], packet_ms: float = 20.0,
                   window_ms: float = 200.0, warmup_s: float = 1.0, stop_early: bool = True
                   ) -> list[ParallelResult]:
    """For each n in `sizes`: ``stream_batch(n)`` pushes the same audio to n lockstep sessions in
    `packet_ms` packets. Rule: n sessions run in real time when the compute of every window of
    `window_ms` audio stays below `window_ms` at p99 (the batch keeps up with the speech, the p99
    window adding at most its own length of delay). Stops after the first n that fails."""
    packet = int(round(packet_ms * SAMPLE_RATE / 1000))
    per_win = int(round(window_ms / packet_ms))
    pk = _packets(audio, packet)
    n_warm = int(warmup_s * SAMPLE_RATE) // packet
    out = []
    for n in sizes:
        batch = engine.stream_batch(n)
        durations = []
        for i, x in enumerate(pk):
            xs = np.broadcast_to(x, (n, len(x)))
            t0 = time.perf_counter()
            batch.push(xs if n > 1 else x)
            durations.append(time.perf_counter() - t0)
        batch.close()
        timed = durations[n_warm:] if len(durations) - n_warm >= per_win else durations
        win = [1e3 * w for w in per_window(timed, per_win)]
        audio_s = len(timed) * packet / SAMPLE_RATE
        p99 = percentile(win, 99)
        out.append(ParallelResult(n, percentile(win, 50), p99, float(np.sum(timed)) / audio_s, p99 < window_ms))
        if stop_early and not out[-1].real_time:
            break
    return out


def format_report(res: BenchResult, targets: bool = True) -> str:
    """Human-readable figures (what ``livegesture bench`` prints)."""
    mib = 1 / 2 ** 20
    prec = "float32" if res.precision == "float32" else f"{res.precision} weight-only matrix products"
    if res.compiled:
        prec += " (compiled one-row audio encoder, step and decoder; batched sessions eager)"
    lines = [f"model: {res.model}", f"torch {torch.__version__}, {res.threads} threads, {prec}, "
             f"classifier-free guidance {'on' if res.guidance else 'off'}; machine load average "
             f"{res.load[0]:.1f} on {res.load[1]} CPUs (other processes slow every figure)"]
    s = res.stream
    if s is not None:
        lines += [
            f"one session, {s.audio_s:.1f} s of speech in {s.packets} packets of {1e3 * s.audio_s / s.packets:.0f} ms "
            f"({'paced in wall-clock real time' if s.paced else 'simulated real time from measured compute'}), "
            f"{s.frames} frames",
            f"  compute per {s.window_ms:.0f} ms of audio: p50 {s.compute_p50:.1f} ms  p95 {s.compute_p95:.1f} ms  "
            f"p99 {s.compute_p99:.1f} ms  max {s.compute_max:.1f} ms" + ("   (target p99 <= 20 ms)" if targets else ""),
            f"  real-time factor: {s.rtf:.3f}  (compute / audio duration)",
            f"  audio-to-frame latency: p50 {s.latency_p50:.1f} ms  p95 {s.latency_p95:.1f} ms  "
            f"max {s.latency_max:.1f} ms  first frame {s.first_frame_latency:.1f} ms"
            + ("   (target p95 <= 150 ms)" if targets else ""),
            "    (emission time - time the audio at the frame's start was spoken; includes the 133 ms token",
            "     period of a token's first frame, the packet wait and compute/queueing; with no compute at all",
            f"     the same frames would have p95 {s.latency_floor_p95:.1f} ms: the packet grid and the token period alone)",
            f"  memory: session state {s.state_bytes * mib:.2f} MiB; process RSS {s.rss_before * mib:.0f} MiB before "
            f"the session, {s.rss_after * mib:.0f} MiB after; peak RSS {s.peak_rss * mib:.0f} MiB",
        ]
    st = res.step
    if st is not None:
        how = (" (compiled, streaming product kernel)" if st.kernel else " (compiled)") if st.compiled else ""
        lines.append(f"model step, batch {st.batch}: KV-cached{how} {st.cached_ms:.2f} ms, "
                     f"recompute the {st.window_tokens}-token window{' (compiled)' if st.recompute_compiled else ' (eager)' if st.compiled else ''} {st.recompute_ms:.2f} ms: speed-up {st.speedup:.1f}x" + ("   (target >= 8x)" if targets else ""))
        lines.append(f"  (alternated with the recompute, which evicts the caches; in a run of steps, as a stream "
                     f"has them: {st.run_ms:.2f} ms)")
        if st.bandwidth_gbs > 0:
            lines.append(f"  memory floor: the step reads {st.read_bytes / 1e6:.1f} MB (weights + KV caches); memory "
                         f"bandwidth measured now {st.bandwidth_gbs:.1f} GB/s -> floor {st.floor_ms:.2f} ms; "
                         f"step / floor {st.floor_ratio:.2f}x" + ("   (target <= 2x)" if targets else "")
                         + f"; in a run of steps {st.run_floor_ratio:.2f}x")
    if res.parallel:
        lines.append("parallel sessions (one stream_batch, lockstep, compute per 200 ms of audio, real time = p99 < 200 ms):")
        for p in res.parallel:
            lines.append(f"  {p.sessions:4d} sessions: p50 {p.compute_p50:7.1f} ms  p99 {p.compute_p99:7.1f} ms  "
                         f"RTF {p.rtf:.3f}  {'real time' if p.real_time else 'NOT real time'}")
        lines.append(f"  sessions in real time: {res.max_sessions}" + ("   (target >= 16)" if targets else ""))
    return "\n".join(lines)
