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
) -> None:
    """Stream a speech file to a running server in real time and save the motion that comes back."""
    from ..serve.client import stream_file

    if not speech.is_file():
        raise typer.BadParameter(f"no such file: {speech}", param_hint="SPEECH")
    url = url if url.rstrip("/").endswith("/ws") else url.rstrip("/") + "/ws"
    res = stream_file(speech, url, seed=seed, packet_ms=packet_ms, realtime=realtime, fmt=fmt)
    out = out or speech.with_suffix(".npz")
    res.motion.save(out)
    p = res.latency_percentiles()
    typer.echo(f"wrote {out} ({len(res.motion)} frames, {res.motion.duration:.2f} s of motion for "
               f"{res.audio_seconds:.2f} s of audio in {res.wall_seconds:.2f} s); latency p50 {1000 * p[50]:.0f} ms, "
               f"p95 {1000 * p[95]:.0f} ms, p99 {1000 * p[99]:.0f} ms")
    for w in res.warnings:
        typer.echo(f"server: {w}", err=True)
