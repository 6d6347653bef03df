"""`livegesture bench`: real-time figures of the streaming engine (see livegesture/bench.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

import typer

from ..errors import LiveGestureError
from .app import app
from .options import check_compile_option, check_precision_option, compile_option, precision_option


@app.command("bench")
def bench_cmd(
    model: Optional[Path] = typer.Option(None, help="model file; default: a randomly initialised model of --size"),
    size: str = typer.Option("base", help="demo | base: the size of the random model when --model is not given"),
    audio: Optional[Path] = typer.Option(None, help="speech file to stream (default: synthetic speech-like audio)"),
    seconds: float = typer.Option(30.0, help="seconds of speech for the single-session figures"),
    threads: int = typer.Option(0, help="torch intra-op threads (0: torch's default)"),
    pace: bool = typer.Option(False, help="sleep to pace packets in wall-clock real time (default: simulated)"),
    sessions: str = typer.Option("1,2,4,8,16,24,32,48,64", help="batch sizes tried in order for parallel sessions, stopping at the first not in real time (empty: skip)"),
    parallel_seconds: float = typer.Option(8.0, help="seconds of speech per parallel-sessions trial"),
    step_iters: int = typer.Option(30, help="timed calls of the KV-cached step and of the window recompute"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures as JSON"),
    precision: str = precision_option(),
    compile: bool = compile_option(),
) -> None:
    """Stream speech through sessions in simulated real time (20 ms packets) and print compute per
    200 ms of audio (p50/p95/p99), real-time factor, audio-to-frame latency, memory, the speed-up
    of the KV-cached step over recomputing the window, and how many parallel sessions run in
    real time."""
    import torch

    from ..bench import BenchResult, bench_parallel, bench_step, bench_stream, format_report, load_average, random_bundle
    from ..data.audio import SAMPLE_RATE, load_audio
    from ..data.synthetic import synthetic_audio
    from ..engine import LiveGesture
    from ..engine.compiled import CompiledStep

    check_precision_option(precision)
    check_compile_option(compile)
    if threads < 0:
        raise LiveGestureError(f"--threads must be >= 0, got {threads}")
    if threads:
        torch.set_num_threads(threads)
    try:
        sizes = [int(v) for v in sessions.split(",") if v.strip()]
    except ValueError:
        raise LiveGestureError(f"--sessions must be comma-separated integers, got {sessions!r}") from None
    if any(n < 1 for n in sizes):
        raise LiveGestureError("--sessions sizes must be >= 1")
    if seconds < 1.5 or parallel_seconds < 1.5:
        raise LiveGestureError("--seconds and --parallel-seconds must be at least 1.5")
    if model is not None:
        lg = LiveGesture.load(model, precision=precision, compile=compile)
        name = str(model)
    else:
        if size not in ("demo", "base"):
            raise LiveGestureError(f"--size must be demo or base, got {size!r}")
        lg = LiveGesture(random_bundle(size), precision, compile)
        name = f"RANDOMLY INITIALISED '{size}' model (no --model; timing does not depend on the weights)"
    n = int(round(max(seconds, parallel_seconds) * SAMPLE_RATE))
    if audio is not None:
        speech = load_audio(audio, SAMPLE_RATE)
        name += f", speech {audio}"
        if len(speech) < n:
            name += f" (looped to {n / SAMPLE_RATE:.0f} s)"
            speech = np.tile(speech, -(-n // len(speech)))
    else:
        speech = synthetic_audio(n / SAMPLE_RATE, seed=0)[0].astype("float32")
        name += ", synthetic speech-like audio"
    res = BenchResult(name, torch.get_num_threads(), lg.sampling.guided, precision=precision, compiled=compile)
    res.stream = bench_stream(lg, speech[:int(seconds * SAMPLE_RATE)], pace=pace)
    step = lg.compiled_step(lg.sampling)
    # compiled: the window recompute is compiled too (one more program, ~1 min the first time), so
    # that the KV figure compares the step with a recompute in the same mode
    window = None if step is None else CompiledStep(lg.bundle.model, 1, step.guided, step.guidance_scale,
                                                    kernel=step.kernel, tokens=lg.bundle.model.config.window_tokens)
    res.step = bench_step(lg.bundle.model, batch=1, iters=step_iters, guidance=lg.sampling.guided,
                          step=step, window=window)
    if sizes:
        res.parallel = bench_parallel(lg, speech[:int(parallel_seconds * SAMPLE_RATE)], sizes)
    res.load = load_average()
    typer.echo(format_report(res))
    if json_out is not None:
        json_out.write_text(json.dumps(res.to_dict(), indent=2))
        typer.echo(f"wrote {json_out}")
