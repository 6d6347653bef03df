"""`livegesture live`: a local live session streamed to a VMC receiver (VTuber and avatar apps)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app
from .options import check_compile_option, compile_option


@app.command("live")
def live_cmd(
    speech: Optional[Path] = typer.Argument(None, help="speech audio file (any rate, channels, sample "
                                                       "type); omit with --mic"),
    vmc: str = typer.Option(..., help="VMC receiver HOST:PORT (VSeeFace, Warudo, VMagicMirror, Unity/Blender "
                                      "receivers; they commonly listen on 39539)"),
    mic: bool = typer.Option(False, "--mic", help="take the speech from the default microphone instead "
                                                 "of a file (needs a sound device and PortAudio)"),
    fast: bool = typer.Option(False, "--fast", help="stream the file as fast as the model goes instead of "
                                                   "in real time (tests, batch use)"),
    seconds: Optional[float] = typer.Option(None, help="stop after this much audio (default: the whole "
                                                       "file; the microphone until Ctrl-C)"),
    model: Optional[Path] = typer.Option(None, help="model file (default: the bundled demo model)"),
    seed: int = typer.Option(0, help="sampling seed"),
    smooth: float = typer.Option(0.0, help="causal low-pass of the output (s), e.g. 0.08; adds about that "
                                           "much lag"),
    root_in_place: bool = typer.Option(False, "--root-in-place", help="drop the horizontal (x/z) "
                                                                      "translation"),
    packet_ms: float = typer.Option(20.0, help="audio per push (ms)"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="also save the motion sent (BEAT2 npz)"),
    compile: bool = compile_option(),
) -> None:
    """Run a live session and send every frame, as soon as it is final, to a VMC receiver
    (OSC over UDP: Unity humanoid bones in Unity's axes, the jaw as the 'A' mouth blend shape)."""
    from ..errors import AudioError, ConfigError
    from ..export import check_output_path
    from ..vmc import VmcSender

    if mic == (speech is not None):
        raise ConfigError("give a SPEECH file or --mic (one of them)")
    if seconds is not None and not seconds > 0:
        raise ConfigError(f"--seconds must be positive, got {seconds}")
    if speech is not None and not speech.is_file():
        raise AudioError(f"no such speech file: {speech}")
    if out is not None:
        check_output_path(out, "motion npz")
    check_compile_option(compile)
    microphone = None
    if mic:
        from ..mic import open_microphone

        microphone = open_microphone(16000, packet_ms, seconds=seconds)
    with VmcSender(vmc) as sender:   # checks the address before the model loads
        from ..data.audio import SAMPLE_RATE, load_audio
        from ..engine import LiveGesture
        from ..smoothing import SmoothingConfig
        from ..vmc.live import file_packets, stream_to_vmc

        lg = LiveGesture.load(model, compile=compile)
        if microphone is not None:
            rate, packets = microphone.sample_rate, microphone
            typer.echo(f"listening on {microphone.device_name!r}; sending VMC to {sender.address} "
                       f"(Ctrl-C to stop)")
        else:
            audio = load_audio(speech, SAMPLE_RATE)
            if seconds is not None:
                audio = audio[: int(seconds * SAMPLE_RATE)]
            rate, packets = SAMPLE_RATE, file_packets(audio, SAMPLE_RATE, packet_ms, realtime=not fast)
        try:
            res = stream_to_vmc(lg, packets, rate, sender, seed=seed, smoothing=SmoothingConfig(smooth),
                                root_in_place=root_in_place)
        except KeyboardInterrupt:
            typer.echo(f"stopped; sent {sender.frames_sent} frames to {sender.address}")
            return
    if out is not None:
        res.motion.save(out)
    refused = f", {res.refused} refused by the receiver" if res.refused else ""
    typer.echo(f"sent {res.frames_sent} frames ({res.motion.duration:.2f} s of motion for "
               f"{res.audio_seconds:.2f} s of audio) to VMC {sender.address} in {res.wall_seconds:.2f} s"
               f"{refused}{f'; wrote {out}' if out is not None else ''}")
