"""Server limits (pydantic, frozen): every queue and message size is bounded by one of these."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ServerConfig(BaseModel):
    """Limits of a LiveGesture server; the defaults suit real-time clients on a small machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_sessions: int = Field(32, ge=1, le=4096, description="concurrent sessions (rows of the model pool)")
    max_packet_bytes: int = Field(256_000, ge=2, description="largest binary audio message (8 s of 16 kHz pcm16)")
    max_text_bytes: int = Field(65_536, ge=64, description="largest text message")
    max_queued_seconds: float = Field(5.0, gt=0, description="audio a session may queue before its socket is "
                                                              "no longer read (back-pressure)")
    max_output_frames: int = Field(150, ge=1, description="frames a client may leave unread before its "
                                                         "session is held")
    slow_client_timeout: float = Field(10.0, gt=0, description="seconds a session may stay held before it "
                                                                "fails as a too slow reader")
    start_timeout: float = Field(10.0, gt=0, description="seconds to wait for the start message")
    idle_timeout: float = Field(60.0, gt=0, description="seconds without any client message before the "
                                                        "session is closed")
    send_timeout: float = Field(10.0, gt=0, description="seconds one send to the client may block")
    # access (livegesture.serve.security, docs/deploy.md)
    token: SecretStr | None = Field(None, min_length=1, description="clients must present this token "
                                                                     "(None: no token)")
    allowed_origins: tuple[str, ...] | None = Field(None, description="browser origins that may open a "
                                                    "WebSocket ('*': any; None: same origin, or any with a token)")
    public_metrics: bool = Field(False, description="serve /metrics without the token")
    max_sessions_per_client: int | None = Field(None, ge=1, description="sessions one client address may "
                                                                        "hold at once (None: no limit)")
    max_session_seconds: float | None = Field(None, gt=0, description="wall-clock length after which a "
                                                                      "session is closed (None: no limit)")
