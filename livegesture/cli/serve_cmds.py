"""`livegesture serve`, `livegesture stream-file` and `livegesture bench-server`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app
from .options import check_precision_option, precision_option

TOKEN_ENV = "LIVEGESTURE_TOKEN"


def _load(model: Optional[Path], precision: str = "float32"):
    from ..engine import LiveGesture

    return LiveGesture.load(model, precision=precision)


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0: all)"),
    port: int = typer.Option(8000, help="TCP port"),
    model: Optional[Path] = typer.Option(None, help="model file (default: the bundled demo model)"),
    max_sessions: int = typer.Option(32, help="concurrent sessions served by the one batched model (per worker)"),
    workers: int = typer.Option(1, help="server processes on the port (uvicorn workers), each with its own "
                                        "model and session pool"),
    threads: int = typer.Option(0, help="torch threads per worker (0: torch's default with 1 worker, "
                                        "cores / workers with more)"),
    token: Optional[str] = typer.Option(None, envvar=TOKEN_ENV, show_envvar=True,
                                        help="clients must present this token (Authorization: Bearer, or "
                                             "?token= for browsers); prefer the environment variable"),
    allow_origin: Optional[list[str]] = typer.Option(
        None, help="browser origin allowed to open a WebSocket, e.g. https://app.example.org (repeatable; "
                   "'*': any). Default: this server's own origin, or any origin when a token is set"),
    public_metrics: bool = typer.Option(False, "--public-metrics", help="serve /metrics without the token"),
    max_sessions_per_client: Optional[int] = typer.Option(
        None, help="sessions one client address may hold at once (default: no limit; per worker)"),
    max_session_seconds: Optional[float] = typer.Option(
        None, help="close a session after this many seconds (default: no limit)"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
    precision: str = precision_option(),
) -> None:
    """Serve the model over WebSocket (/ws, protocol in docs/protocol.md), with /health, /metrics
    and a live 3D viewer at http://HOST:PORT/ . On a network: docs/deploy.md (token, TLS, limits)."""
    import os

    from pydantic import ValidationError

    from ..errors import ConfigError, LiveGestureError
    from ..serve.config import ServerConfig
    from ..serve.runner import listen_socket, serve, serve_workers

    if workers < 1 or threads < 0:
        raise LiveGestureError(f"--workers must be >= 1 and --threads >= 0, got {workers} and {threads}")
    check_precision_option(precision)
    try:
        config = ServerConfig(max_sessions=max_sessions, token=token, public_metrics=public_metrics,
                              allowed_origins=tuple(allow_origin) if allow_origin else None,
                              max_sessions_per_client=max_sessions_per_client,
                              max_session_seconds=max_session_seconds)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"--{'-'.join(map(str, err['loc'])).replace('_', '-')}: {err['msg']}") from None
    sock = listen_socket(host, port)  # a busy port fails here, before the model loads
    engine = _load(model, precision)  # also checks the model file before any worker starts
    typer.echo(f"LiveGesture server on http://{host}:{port}/ (WebSocket ws://{host}:{port}/ws)"
               + (f", {workers} workers" if workers > 1 else "")
               + ("; clients need the token" if token else ""))
    if workers == 1:
        if threads:
            import torch

            torch.set_num_threads(threads)
        serve(engine, host, port, config, log_level, sock=sock)
    else:
        del engine
        sock.close()  # uvicorn's supervisor binds the port again (SO_REUSEADDR: at once) for its workers
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        serve_workers(model, workers, host, port, config, threads, log_level, precision)


@app.command("stream-file")
def stream_file_cmd(
    speech: Path = typer.Argument(..., help="speech audio file (any rate, channels, sample type)"),
    url: str = typer.Option("ws://127.0.0.1:8000/ws", help="server URL (ws://, wss://, or the http(s):// "
                                                              "address the server prints)"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="motion npz to write (default: none, only "
                                                                 "the latency is printed)"),
    seed: int = typer.Option(0, help="sampling seed"),
    packet_ms: float = typer.Option(20.0, help="audio per WebSocket message (ms)"),
    realtime: bool = typer.Option(True, help="pace the packets in real time (--no-realtime: as fast as possible)"),
    fmt: str = typer.Option("pcm16", "--format",
                            help="pcm16 (16-bit, what microphones give; the samples are rounded to 16 bits, so "
                                 "the motion can differ from 'generate' on float or 24-bit audio) or f32 "
                                 "(float32: the frames of 'generate' for the same file and seed, to float rounding)"),
    token: Optional[str] = typer.Option(None, envvar=TOKEN_ENV, show_envvar=True,
                                        help="the server's access token, if it has one"),
    vmc: Optional[str] = typer.Option(None, help="also forward every frame to a VMC receiver HOST:PORT "
                                                 "as it arrives (see 'livegesture live')"),
) -> None:
    """Stream a speech file to a running server in real time; print the latency, save the motion with -o."""
    from ..data.audio import SAMPLE_RATE, load_audio
    from ..errors import LiveGestureError
    from ..export import check_output_path
    from ..serve.client import stream_audio_sync, ws_url
    from .checks import speech_long_enough

    if not speech.is_file():
        raise typer.BadParameter(f"no such file: {speech}", param_hint="SPEECH")
    if fmt not in ("pcm16", "f32"):
        raise LiveGestureError(f"--format must be pcm16 or f32, got {fmt!r}")
    if out is not None:
        check_output_path(out, "motion npz (--out)", inputs=(speech,))
    sender = None
    if vmc is not None:
        from ..vmc import VmcSender

        sender = VmcSender(vmc)  # checks the address before streaming
    url = ws_url(url)
    audio = load_audio(speech, SAMPLE_RATE)
    speech_long_enough(audio, speech)
    res = stream_audio_sync(url, audio, sample_rate=SAMPLE_RATE, seed=seed, packet_ms=packet_ms,
                            realtime=realtime, fmt=fmt, token=token, vmc=sender)
    if out is not None:
        res.motion.save(out)
    p = res.latency_percentiles()
    latency = (f"latency p50 {1000 * p[50]:.0f} ms, p95 {1000 * p[95]:.0f} ms, p99 {1000 * p[99]:.0f} ms"
               if len(res.latencies) else "no frame latency measured")
    typer.echo(f"{f'wrote {out}' if out is not None else 'received'} ({len(res.motion)} frames, "
               f"{res.motion.duration:.2f} s of motion for {res.audio_seconds:.2f} s of audio in "
               f"{res.wall_seconds:.2f} s); {latency}{'' if out is not None else ' (no -o: nothing saved)'}")
    for w in res.warnings:
        typer.echo(f"server: {w}", err=True)
    if sender is not None:
        typer.echo(f"forwarded {sender.frames_sent} frames to VMC {sender.address}")
        sender.close()


@app.command("bench-server")
def bench_server_cmd(
    model: Optional[Path] = typer.Option(None, help="model file for the server this command starts "
                                                    "(default: the bundled demo model)"),
    url: Optional[str] = typer.Option(None, help="benchmark a running server instead (ws://HOST:PORT/ws)"),
    clients: Optional[int] = typer.Option(None, "-n", "--clients", help="run one trial with N clients (no search)"),
    max_clients: int = typer.Option(64, help="largest N the search tries"),
    seconds: float = typer.Option(8.0, help="speech streamed by every client (s)"),
    audio: Optional[Path] = typer.Option(None, help="speech file (default: synthetic speech)"),
    packet_ms: float = typer.Option(20.0, help="audio per packet (ms)"),
    latency_bound: float = typer.Option(0.3, help="p95 latency (s) under which N counts as real time"),
    threads: int = typer.Option(1, help="torch threads of (each worker of) the server this command starts"),
    workers: str = typer.Option("1", help="worker processes of the server this command starts; a comma list "
                                          "(e.g. 1,2) runs the search once per count"),
    precision: str = precision_option(),
) -> None:
    """N concurrent real-time clients on loopback: latency percentiles, dropped and late frames, and the
    largest N served in real time (p95 latency under the bound, nothing dropped)."""
    from ..data.audio import load_audio
    from ..data.synthetic import synthetic_audio
    from ..serve.bench import run_trial, search, start_server

    check_precision_option(precision)
    if url is None and model is None:
        from ..assets import demo_model_path

        model = demo_model_path()  # the bundled demo model (a clear error when it is not installed)
    x = load_audio(audio, 16000)[: int(seconds * 16000)] if audio else synthetic_audio(seconds, seed=0)[0]
    x = x.astype("float32")
    try:
        counts = [int(v) for v in workers.split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        from ..errors import LiveGestureError

        raise LiveGestureError(f"--workers must be positive integers separated by commas, got {workers!r}")
    summary = []
    for n_workers in counts if url is None else [None]:
        proc, target = None, url
        if target is None:
            proc, target = start_server(model, max_sessions=max(clients or 0, max_clients), threads=threads,
                                        workers=n_workers or 1, extra=("--precision", precision))
        try:
            typer.echo(f"server {target}{f' ({n_workers} workers)' if n_workers else ''}; each client streams "
                       f"{len(x) / 16000:.1f} s in {packet_ms:g} ms packets in real time")
            if clients is not None:
                typer.echo(run_trial(target, x, clients, packet_ms, latency_bound).line(latency_bound))
            else:
                best, _ = search(target, x, max_clients, packet_ms, latency_bound, report=typer.echo)
                limit = " (the search limit)" if best == max_clients else ""
                typer.echo(f"largest N served in real time on this machine: {best}{limit}")
                summary.append(f"{n_workers} worker(s): {best} sessions{limit}")
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except Exception:  # noqa: BLE001
                    proc.kill()
    if len(summary) > 1:
        typer.echo("sessions per machine in real time: " + "; ".join(summary))
