"""Prometheus metrics of one server (its own registry, so several apps in one process stay apart)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["ServerMetrics", "CONTENT_TYPE_LATEST"]


class ServerMetrics:
    """Sessions, frames, latency, errors and model batching of a LiveGesture server."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sessions_active = Gauge("livegesture_sessions_active", "open sessions", registry=r)
        self.sessions_total = Counter("livegesture_sessions", "sessions opened", registry=r)
        self.frames_total = Counter("livegesture_frames_sent", "motion frames sent to clients", registry=r)
        self.audio_seconds = Counter("livegesture_audio_received_seconds", "audio received (s)", registry=r)
        self.errors_total = Counter("livegesture_errors", "sessions ended by an error, by kind", ["kind"],
                                    registry=r)
        self.disconnects_total = Counter("livegesture_disconnects", "clients gone before the end", registry=r)
        self.latency = Histogram("livegesture_frame_latency_seconds",
                                 "from the arrival of the audio a frame depends on to its send",
                                 buckets=(.005, .01, .02, .04, .06, .08, .1, .15, .2, .3, .5, 1, 2, 5), registry=r)
        self.model_seconds = Counter("livegesture_model_seconds", "time in the model thread (s)", registry=r)
        self.model_calls = Counter("livegesture_model_steps", "batched model.step calls", registry=r)
        self.tokens = Counter("livegesture_tokens", "tokens stepped (all sessions)", registry=r)

    def session_opened(self) -> None:
        self.sessions_total.inc()
        self.sessions_active.inc()

    def session_closed(self) -> None:
        self.sessions_active.dec()

    def audio_received(self, seconds: float) -> None:
        self.audio_seconds.inc(seconds)

    def frame_sent(self, latency: float | None) -> None:
        self.frames_total.inc()
        if latency is not None:
            self.latency.observe(latency)

    def error(self, kind: str) -> None:
        self.errors_total.labels(kind).inc()

    def disconnect(self) -> None:
        self.disconnects_total.inc()

    def model_work(self, seconds: float, calls: int, tokens: int) -> None:
        self.model_seconds.inc(seconds)
        self.model_calls.inc(calls)
        self.tokens.inc(tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
