"""`livegesture serve`, `livegesture stream-file` and `livegesture bench-server`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app


def _load(model: Optional[Path]):
    from ..engine import LiveGesture

    return LiveGesture.load(model) if model is not None else LiveGesture.load()


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="interface to listen on (0.0.0.0: all)"),
    port: int = typer.Option(8000, help="TCP port"),
    model: Optional[Path] = typer.Option(None, help="model file (default: the bundled demo model)"),
    max_sessions: int = typer.Option(32, help="concurrent sessions served by the one batched model"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Serve the model over WebSocket (/ws, protocol in docs/protocol.md), with /health, /metrics
    and a live 3D viewer at http://HOST:PORT/ ."""
    from ..serve.config import ServerConfig
    from ..serve.runner import serve

    engine = _load(model)
    typer.echo(f"LiveGesture server on http://{host}:{port}/ (WebSocket ws://{host}:{port}/ws)")
    serve(engine, host, port, ServerConfig(max_sessions=max_sessions), log_level)


@app.command("stream-file")
def stream_file_cmd(
    speech: Path = typer.Argument(..., help="speech audio file (any rate, channels, sample type)"),
    url: str = typer.Option("ws://127.0.0.1:8000/ws", help="server WebSocket URL"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="motion npz to write (default SPEECH.npz)"),
    seed: int = typer.Option(0, help="sampling seed"),
    packet_ms: float = typer.Option(20.0, help="audio per WebSocket message (ms)"),
    realtime: bool = typer.Option(True, help="pace the packets in real time (--no-realtime: as fast as possible)"),
    fmt: str = typer.Option("pcm16", "--format", help="pcm16 or f32"),
    vmc: Optional[str] = typer.Option(None, help="also forward every frame to a VMC receiver HOST:PORT "
                                                 "as it arrives (see 'livegesture live')"),
) -> None:
    """Stream a speech file to a running server in real time and save the motion that comes back."""
    from ..export import check_output_path
    from ..serve.client import stream_file

    if not speech.is_file():
        raise typer.BadParameter(f"no such file: {speech}", param_hint="SPEECH")
    out = check_output_path(out or speech.with_suffix(".npz"), "motion npz")
    sender = None
    if vmc is not None:
        from ..vmc import VmcSender

        sender = VmcSender(vmc)  # checks the address before streaming
    url = url if url.rstrip("/").endswith("/ws") else url.rstrip("/") + "/ws"
    res = stream_file(speech, url, seed=seed, packet_ms=packet_ms, realtime=realtime, fmt=fmt, vmc=sender)
    res.motion.save(out)
    p = res.latency_percentiles()
    typer.echo(f"wrote {out} ({len(res.motion)} frames, {res.motion.duration:.2f} s of motion for "
               f"{res.audio_seconds:.2f} s of audio in {res.wall_seconds:.2f} s); latency p50 {1000 * p[50]:.0f} ms, "
               f"p95 {1000 * p[95]:.0f} ms, p99 {1000 * p[99]:.0f} ms")
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
    threads: int = typer.Option(1, help="torch threads of the server this command starts"),
) -> None:
    """N concurrent real-time clients on loopback: latency percentiles, dropped and late frames, and the
    largest N served in real time (p95 latency under the bound, nothing dropped)."""
    from ..data.audio import load_audio
    from ..data.synthetic import synthetic_audio
    from ..serve.bench import run_trial, search, start_server

    if url is None and model is None:
        from ..assets import demo_model_path

        model = demo_model_path()  # the bundled demo model (a clear error when it is not installed)
    x = load_audio(audio, 16000)[: int(seconds * 16000)] if audio else synthetic_audio(seconds, seed=0)[0]
    x = x.astype("float32")
    proc = None
    if url is None:
        proc, url = start_server(model, max_sessions=max(clients or 0, max_clients), threads=threads)
    try:
        typer.echo(f"server {url}; each client streams {len(x) / 16000:.1f} s in {packet_ms:g} ms packets "
                   f"in real time")
        if clients is not None:
            typer.echo(run_trial(url, x, clients, packet_ms, latency_bound).line(latency_bound))
        else:
            best, _ = search(url, x, max_clients, packet_ms, latency_bound, report=typer.echo)
            typer.echo(f"largest N served in real time on this machine: {best}"
                       f"{' (the search limit)' if best == max_clients else ''}")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except Exception:  # noqa: BLE001
                proc.kill()
