"""Seeded noise of recipes/asr-demo/local/synthesize.py (README "Audio" of asr-dev)."""
import numpy as np

from tests.recipes.conftest import load_local

synthesize = load_local("synthesize")


def _speech(length: int = 16000) -> np.ndarray:
    time = np.arange(length) / 16000
    return (8000 * np.sin(2 * np.pi * 300 * time) * (time > 0.25)).astype(np.int16)


def test_noise_reaches_the_target_snr_on_speech_samples():
    speech = _speech()
    for snr_db in (25, 22, 20):
        noisy = synthesize.add_noise(speech, snr_db, np.random.default_rng(1))
        noise = noisy.astype(np.float64) - speech
        loud = np.abs(speech) > 0.05 * np.abs(speech).max()
        measured = 10 * np.log10(np.mean(speech[loud].astype(np.float64) ** 2) / np.mean(noise**2))
        assert abs(measured - snr_db) < 0.05  # only int16 rounding moves it
        assert noisy.dtype == np.int16


def test_one_generator_consumed_in_utterance_order():
    speech = _speech(8000)
    shared = np.random.default_rng(1)
    first = synthesize.add_noise(speech, 25, shared)
    second = synthesize.add_noise(speech, 25, shared)
    assert not np.array_equal(first, second)  # the generator advanced
    replay = np.random.default_rng(1)
    replay.standard_normal(len(speech))
    assert np.array_equal(second, synthesize.add_noise(speech, 25, replay))
    # The noise is white noise filtered by h[n] = 0.9^n, mode "same".
    white = np.random.default_rng(1).standard_normal(len(speech))
    noise = np.convolve(white, 0.9 ** np.arange(50), mode="same")
    loud = np.abs(speech) > 0.05 * 8000
    scale = np.sqrt(np.mean(speech[loud].astype(np.float64) ** 2) / np.mean(noise**2) / 10**2.5)
    added = first.astype(np.float64) - speech
    assert np.abs(added - scale * noise).max() <= 0.5 + 1e-6  # equal up to rounding


def test_noise_is_clipped_to_int16():
    loud = np.full(1000, 32767, dtype=np.int16)
    noisy = synthesize.add_noise(loud, 20, np.random.default_rng(1))
    assert noisy.max() == 32767 and noisy.min() < 32767


def test_voice_and_snr_rotation_matches_dev():
    assert [synthesize.voice_and_snr(k) for k in range(5)] == [
        ("slt", 25), ("rms", 22), ("awb", 20), ("kal16", 25), ("slt", 22)]


def test_manifests_use_the_utterance_id_everywhere(tmp_path):
    from lhotse import load_manifest

    soundfile = __import__("soundfile")
    wavs = []
    for utt_id in ("u-0001", "u-0002"):
        wavs.append(tmp_path / f"{utt_id}.wav")
        soundfile.write(wavs[-1], _speech(8000), 16000, subtype="PCM_16")
    synthesize.write_manifests(tmp_path, {"u-0001": "a b", "u-0002": "c"}, wavs)
    cuts = load_manifest(tmp_path / "cuts.jsonl.gz")
    assert [(cut.id, cut.supervisions[0].text, cut.duration) for cut in cuts] == [
        ("u-0001", "a b", 0.5), ("u-0002", "c", 0.5)]
