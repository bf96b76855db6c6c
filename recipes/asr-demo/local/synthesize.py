#!/usr/bin/env python3
"""Synthesize the selected sentences with flite and add seeded noise (stage 2 of asr-demo).

Follows ``shared/data/asr-dev/README.md`` ("Audio"): utterance k uses voice
``VOICES[k % 4]`` and SNR ``SNRS_DB[k % 3]``; the noise is white Gaussian noise
from ONE ``numpy.random.default_rng(seed)`` consumed in utterance order,
low-pass filtered by h[n] = 0.9^n (n < 50), scaled against the power of the
speech samples with |x| > 5% of max|x|, and the sum is rounded and clipped to
int16. flite runs in ``--nj`` parallel processes; the noise is added in order.

Writes ``wav/UTTID.wav``, ``audio.tsv`` and lhotse manifests
(``recordings.jsonl.gz``, ``supervisions.jsonl.gz``, ``cuts.jsonl.gz``).
"""
import argparse
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import soundfile

VOICES = ("slt", "rms", "awb", "kal16")
SNRS_DB = (25, 22, 20)
SAMPLE_RATE = 16000
FILTER = 0.9 ** np.arange(50)  # h[n] = 0.9^n, n < 50: a one-pole low-pass
SPEECH_THRESHOLD = 0.05  # samples above 5% of the peak count as speech


def read_kaldi_text(path: Path) -> Dict[str, str]:
    """``UTTID words...`` lines as an ordered dict."""
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        utt_id, _, words = line.partition(" ")
        entries[utt_id] = words.strip()
    return entries


def flite_synthesize(text: str, voice: str) -> np.ndarray:
    """1-D int16 array: flite's 16 kHz mono waveform of ``text``."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
        samples, rate = soundfile.read(wav, dtype="int16")
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"flite voice {voice}: expected {SAMPLE_RATE} Hz, got {rate}")
    return samples


def add_noise(speech: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add filtered Gaussian noise at ``snr_db`` to int16 ``speech``; returns int16.

    Draws ``len(speech)`` samples from ``rng`` (so the generator advances in
    utterance order).
    """
    signal = speech.astype(np.float64)
    noise = np.convolve(rng.standard_normal(len(signal)), FILTER, mode="same")
    loud = np.abs(signal) > SPEECH_THRESHOLD * np.abs(signal).max()
    speech_power = np.mean(signal[loud] ** 2)
    noise_power = np.mean(noise**2)
    noise *= np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return np.clip(np.round(signal + noise), -32768, 32767).astype(np.int16)


def voice_and_snr(index: int) -> Tuple[str, int]:
    """Voice and SNR of the utterance at 0-based position ``index``."""
    return VOICES[index % len(VOICES)], SNRS_DB[index % len(SNRS_DB)]


def write_manifests(out_dir: Path, texts: Dict[str, str], wavs: List[Path]) -> None:
    """lhotse RecordingSet, SupervisionSet and CutSet (.jsonl.gz) for the audio.

    Recording, supervision and cut ids all equal the utterance id, so
    ``fprescore rescore --cuts`` finds the references of lattice UTTID.
    """
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    recordings = RecordingSet.from_recordings(
        Recording.from_file(wav, recording_id=utt_id) for utt_id, wav in zip(texts, wavs)
    )
    supervisions = SupervisionSet.from_segments(
        SupervisionSegment(
            id=utt_id, recording_id=utt_id, start=0.0,
            duration=recordings[utt_id].duration, channel=0, text=text, language="English",
        )
        for utt_id, text in texts.items()
    )
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    cuts = CutSet.from_cuts(cut.with_id(cut.recording_id) for cut in cuts)  # cut id = utt id
    recordings.to_file(out_dir / "recordings.jsonl.gz")
    supervisions.to_file(out_dir / "supervisions.jsonl.gz")
    cuts.to_file(out_dir / "cuts.jsonl.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds text, utt2line")
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    texts = read_kaldi_text(args.data_dir / "text")
    lines = read_kaldi_text(args.data_dir / "utt2line")
    settings = [voice_and_snr(index) for index in range(len(texts))]
    with ThreadPoolExecutor(max_workers=args.nj) as pool:  # flite runs as a subprocess
        speech = list(pool.map(flite_synthesize, texts.values(), [v for v, _ in settings]))

    rng = np.random.default_rng(args.seed)  # one generator, consumed in utterance order
    wav_dir = args.data_dir / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    wavs, rows = [], ["uttid\tvoice\tsnr_db\tsource_line\tduration_s"]
    for utt_id, samples, (voice, snr_db) in zip(texts, speech, settings):
        wav = wav_dir / f"{utt_id}.wav"
        soundfile.write(wav, add_noise(samples, snr_db, rng), SAMPLE_RATE, subtype="PCM_16")
        wavs.append(wav)
        rows.append(f"{utt_id}\t{voice}\t{snr_db}\t{lines[utt_id]}\t{len(samples) / SAMPLE_RATE:.3f}")
    (args.data_dir / "audio.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    write_manifests(args.data_dir, texts, wavs)
    total = sum(len(s) for s in speech) / SAMPLE_RATE
    print(f"synthesized {len(wavs)} utterances, {total:.1f} s of audio, in {wav_dir}")


if __name__ == "__main__":
    main()
