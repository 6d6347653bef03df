import numpy as np
import pytest
import soundfile as sf

from livegesture.data import SAMPLE_RATE, load_audio, prepare_audio
from livegesture.errors import AudioError


def _tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr))


def _peak_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()])


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("subtype,channels", [("PCM_16", 1), ("FLOAT", 1), ("PCM_24", 2),
                                              ("PCM_16", 2)])
def test_load_any_rate_type_and_channels(tmp_path, sr, subtype, channels):
    tone = _tone(440.0, 1.0, sr)
    # stereo: channel peaks 0.6 and 0.2 -> the mono downmix peaks at 0.4
    data = tone[:, None] * (np.array([1.2, 0.4]) if channels == 2 else np.ones(1))
    path = tmp_path / f"tone_{sr}_{subtype}_{channels}.wav"
    sf.write(path, data, sr, subtype=subtype)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1 and x.flags.c_contiguous
    assert abs(len(x) - len(tone) * SAMPLE_RATE / sr) <= 1
    assert abs(_peak_freq(x, SAMPLE_RATE) - 440.0) <= 1.5
    expected_peak = 0.4 if channels == 2 else 0.5
    mid = x[len(x) // 4: 3 * len(x) // 4]   # away from resampler edge effects
    assert np.abs(mid).max() == pytest.approx(expected_peak, abs=0.01)


def test_load_to_other_rate(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(300.0, 0.5, 16000), 16000)
    x = load_audio(tmp_path / "a.wav", sample_rate=24000)
    assert len(x) == 12000 and abs(_peak_freq(x, 24000) - 300) <= 2.5


def test_not_audio_names_the_file(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not a wave file\n" * 10)
    with pytest.raises(AudioError, match=r"notes\.wav: not an audio file"):
        load_audio(p)


def test_missing_empty_and_nan_files(tmp_path):
    with pytest.raises(AudioError, match=r"absent\.wav: no such audio file"):
        load_audio(tmp_path / "absent.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: .*zero samples"):
        load_audio(tmp_path / "empty.wav")
    x = _tone(200, 0.1, 16000).astype(np.float32)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: contains NaN or Inf"):
        load_audio(tmp_path / "nan.wav")


def test_prepare_int_scaling_and_downmix():
    x16 = np.array([-32768, 0, 16384, 32767], np.int16)
    np.testing.assert_allclose(prepare_audio(x16, 16000), [-1.0, 0.0, 0.5, 32767 / 32768])
    x32 = np.array([-(2 ** 31), 2 ** 30], np.int32)
    np.testing.assert_allclose(prepare_audio(x32, 16000), [-1.0, 0.5])
    stereo = np.array([[0.2, 0.4], [-1.0, 0.0], [0.5, 0.5]], np.float64)
    y = prepare_audio(stereo, 16000)
    assert y.dtype == np.float32 and y.shape == (3,)
    np.testing.assert_allclose(y, [0.3, -0.5, 0.5], atol=1e-7)


def test_prepare_resamples_and_is_contiguous():
    x = _tone(1000.0, 0.5, 48000)
    strided = np.stack([x, x], axis=1)[:, :1]      # non-contiguous column
    y = prepare_audio(strided, 48000)
    assert y.flags.c_contiguous and y.dtype == np.float32
    assert abs(len(y) - 8000) <= 1 and abs(_peak_freq(y, 16000) - 1000) <= 2.5
    assert prepare_audio(np.zeros(0, np.float32), 44100).shape == (0,)


@pytest.mark.parametrize("bad,match", [
    (np.zeros(10, np.uint8), "unsupported sample type uint8"),
    (np.zeros(10, np.complex64), "unsupported sample type"),
    (np.zeros((2, 3, 4), np.float32), "got shape"),
    (np.array([0.0, np.inf], np.float32), "NaN or Inf"),
    (np.array([[0.0, np.nan]], np.float64), "NaN or Inf"),
    (np.zeros((2, 1000), np.float32), "looks like \\(channels, samples\\)"),
])
def test_prepare_rejects(bad, match):
    with pytest.raises(AudioError, match=match):
        prepare_audio(bad, 16000)


@pytest.mark.parametrize("rate", [0, -16000, 16000.5])
def test_prepare_rejects_bad_rate(rate):
    with pytest.raises(AudioError, match="sample rate"):
        prepare_audio(np.zeros(10, np.float32), rate)
