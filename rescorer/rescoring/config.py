"""The settings of one ``fprescore rescore`` run, checked once up front."""
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from rescorer.devices import DEVICES
from rescorer.errors import ConfigError
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.defaults import DEFAULT_BATCH_SIZE
from rescorer.rescoring.grid import BARE, Grid, GridAxis

MODES = ("lattice", "nbest")
DECODES = ("viterbi", "mbr")
NGRAM_SOURCES = ("lattice", "arpa")
MAX_SHARDS = 100_000


@dataclass
class RescoreConfig:
    """Everything ``rescore`` needs; the CLI builds it from its options.

    Attributes:
      lattices:
        Lattice files or folders (any supported format, detected).
      model:
        The LM checkpoint.
      out:
        Output folder, or "-" to print the 1-best to stdout only.
      words:
        ``words.txt`` (needed for k2 and Kaldi text lattices).
      scales:
        The combination weights (``rescorer.rescoring.combine``).
      oov_penalty:
        Added to the neural LM log-probability for each out-of-vocabulary word.
      beam:
        Prune arcs outside this beam (first-pass scores, forward-backward)
        before expansion; None keeps every arc (the CLI's default is 16).
      max_arcs:
        Most arcs an expanded lattice may have; above it the beam tightens.
      beam_tries:
        How many times the beam may be halved before the utterance fails.
      batch_size:
        Lattices rescored together: pruned, expanded and searched level by
        level as one batch, their LM queries scored in one pass.
      chunk_rows:
        Rows per LM matrix product (memory bound: chunk_rows x V floats, and
        the states of the prefix trie of 16 x chunk_rows histories).
        Every product gets exactly this many rows (padded) so that scores do
        not depend on batching; 256 keeps the padding small on asr-dev's trie
        levels of a unit.
      device:
        "auto" (CUDA when available), "cpu" or "cuda".
      threads:
        torch CPU threads during the run (restored after). 1 by default: the
        graph algorithms run many small tensor ops, which extra threads slow
        down (measured 60x on a loaded 2-core machine, see
        docs/results/rescoring.md).
      jobs:
        Worker processes (CPU only), each rescoring a share of the files with
        its own copy of the model.
      nbest:
        Hypotheses per utterance in ``nbest.jsonl`` (and the list size of
        ``mode="nbest"``).
      mode:
        "lattice" (exact expansion) or "nbest" (rescore the first-pass n-best).
      history_approx:
        Expansion window for models without a bounded history (sequential
        solver): histories are truncated to this many tokens.
      grid:
        The ``--grid`` sweep (``rescorer.rescoring.grid``; needs references), or
        None. A plain sequence of floats is taken as LM scales.
      refs / cuts:
        Reference transcripts (Kaldi text / lhotse cuts) for WER.
      ignore_case:
        Compare words case-insensitively in WER.
      strict:
        Stop at the first failed utterance.
      write_lattices:
        Also write the rescored expanded lattices (k2 ``lattices.pt``).
      kaldi_lattices:
        Also write them as a Kaldi archive to this write specifier
        (``formats.kaldi_outputs``), or None.
      kaldi_nbest:
        Also write ``nbest.txt``, ``lm_cost`` and ``ac_cost`` (Kaldi n-best form).

      lowercase:
        Fold lattice words to lower case before the LM lookup.
      shard:
        (I, N): rescore only the utterances of shard I of N (1-based; see
        ``rescorer.rescoring.inputs.shard_of``) and keep what ``fprescore
        merge`` needs; None rescores everything.
      decode:
        "viterbi" (the best path) or "mbr" (the minimum-Bayes-risk consensus,
        Kaldi's lattice-mbr-decode, on the rescored lattice; with
        ``mode="nbest"`` over the n-best list). With a grid, the grid point is
        chosen with the Viterbi 1-best and MBR runs at that point (under
        ``--shard`` at every grid point, for ``fprescore merge``).
      mbr_scale:
        MBR posterior scale: P(path) proportional to exp(mbr_scale * total),
        ``total`` the combined score (``rescoring.combine``). 1 equals Kaldi's
        ``lattice-mbr-decode --acoustic-scale=AM_SCALE`` when ``--am-scale``
        holds Kaldi's acoustic scale (1/LMWT, graph cost unscaled); when the
        LM weight is inside the n-gram score and am is unscaled (SLF with
        lmscale L), Kaldi's convention is 1/L.
      frame_shift:
        Seconds per frame, for CTM times of Kaldi and k2 lattices.
      ngram_lm:
        An ARPA back-off n-gram (``.arpa`` or ``.arpa.gz``) scored exactly on
        the lattice expanded to both LMs' histories, or None.
      ngram_cache:
        Folder for its binary cache (``rescorer.ngram.cache``), or None for none.
      ngram_source:
        "lattice": the ARPA is one more component (``scales.arpa``); "arpa":
        it replaces the lattice's n-gram part (``rescorer.rescoring.combine``).
    """

    lattices: List[Path]
    model: Path
    out: str
    words: Optional[Path] = None
    scales: Scales = field(default_factory=Scales)
    oov_penalty: float = 0.0
    beam: Optional[float] = None
    max_arcs: int = 500_000
    beam_tries: int = 4
    batch_size: int = DEFAULT_BATCH_SIZE
    chunk_rows: int = 256
    device: str = "auto"
    threads: int = 1
    jobs: int = 1
    nbest: int = 10
    mode: str = "lattice"
    history_approx: Optional[int] = None
    grid: Optional[Grid] = None
    refs: Optional[Path] = None
    cuts: Optional[Path] = None
    ignore_case: bool = False
    strict: bool = False
    write_lattices: bool = False
    kaldi_lattices: Optional[str] = None
    kaldi_nbest: bool = False

    lowercase: bool = False
    shard: Optional[Tuple[int, int]] = None
    decode: str = "viterbi"
    mbr_scale: float = 1.0
    frame_shift: float = 0.01
    ngram_lm: Optional[Path] = None
    ngram_cache: Optional[Path] = None
    ngram_source: str = "lattice"

    def __post_init__(self) -> None:
        if not self.lattices:
            raise ConfigError("no lattice files given")
        if self.out != "-" and Path(self.out).exists() and not Path(self.out).is_dir():
            raise ConfigError("--out names an existing file (expected a folder, or '-' for stdout)",
                              path=self.out)
        if self.mode not in MODES:
            raise ConfigError(f"unknown --mode (expected one of {MODES}, got {self.mode!r})")
        if self.device not in DEVICES:
            raise ConfigError(f"unknown --device (expected one of {DEVICES}, got {self.device!r})")
        for name in ("max_arcs", "batch_size", "chunk_rows", "nbest", "threads", "jobs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(self, name)})")
        scales = {"--am-scale": self.scales.am, "--ngram-scale": self.scales.ngram,
                  "--lm-scale": self.scales.lm, "--word-penalty": self.scales.word_penalty,
                  "--oov-penalty": self.oov_penalty}
        for name, value in scales.items():
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be finite (got {value})")
        if self.beam is not None and not self.beam > 0:
            raise ConfigError(f"--beam must be > 0 (got {self.beam})")
        if self.beam_tries < 0:
            raise ConfigError(f"beam_tries must be >= 0 (got {self.beam_tries})")
        if self.history_approx is not None and self.history_approx < 1:
            raise ConfigError(f"--history-approx must be >= 1 (got {self.history_approx})")
        if self.grid is not None and not isinstance(self.grid, Grid):
            self.grid = Grid((GridAxis(BARE, tuple(float(value) for value in self.grid)),))
        if self.grid is not None and self.refs is None and self.cuts is None:
            raise ConfigError("--grid needs references to pick a scale (give --refs or --cuts)")
        if self.refs is not None and self.cuts is not None:
            raise ConfigError("give either --refs or --cuts, not both")
        if self.out == "-" and self.write_lattices:
            raise ConfigError("--write-lattices needs an output folder (got --out -)")
        if self.jobs > 1 and self.device == "cuda":
            raise ConfigError("--jobs > 1 runs CPU worker processes; with --device cuda use one "
                              "process and a larger --batch-size")
        if self.shard is not None and self.out == "-":
            raise ConfigError("--shard writes what `fprescore merge` needs: give an output folder "
                              "(got --out -)")
        if self.mode == "nbest" and self.write_lattices:
            raise ConfigError("--write-lattices writes expanded lattices: it needs --mode lattice")
        self._check_kaldi_outputs()
        self._check_decode()
        self._check_ngram()

    def _check_decode(self) -> None:
        """The --decode options, checked before any work starts."""
        if self.decode not in DECODES:
            raise ConfigError(f"unknown --decode (expected one of {DECODES}, got {self.decode!r})")
        if not (math.isfinite(self.mbr_scale) and self.mbr_scale > 0):
            raise ConfigError(f"--mbr-scale must be finite and > 0 (got {self.mbr_scale})")
        if not (math.isfinite(self.frame_shift) and self.frame_shift > 0):
            raise ConfigError(f"--frame-shift must be finite and > 0 (got {self.frame_shift})")

    def _check_ngram(self) -> None:
        """The ARPA options (``--ngram-lm``, ``--ngram-source``, ``--interpolate``, ``--arpa-scale``)."""
        lam = self.scales.interpolation
        if self.ngram_source not in NGRAM_SOURCES:
            raise ConfigError(f"unknown --ngram-source (expected one of {NGRAM_SOURCES}, "
                              f"got {self.ngram_source!r})")
        if not math.isfinite(self.scales.arpa):
            raise ConfigError(f"--arpa-scale must be finite (got {self.scales.arpa})")
        if lam is not None and not 0.0 <= lam <= 1.0:
            raise ConfigError(f"--interpolate must be in [0, 1] (got {lam})")
        if self.ngram_lm is None:
            for name in ("lambda", "arpa-scale"):
                if self.grid is not None and name in self.grid.names:
                    raise ConfigError(f"--grid {name}=... needs --ngram-lm FILE.arpa")
            if self.ngram_source == "arpa":
                raise ConfigError("--ngram-source arpa needs --ngram-lm FILE.arpa")
            if lam is not None:
                raise ConfigError("--interpolate needs --ngram-lm FILE.arpa (the n-gram to mix with)")
            return
        if self.mode == "nbest":
            raise ConfigError("--ngram-lm needs --mode lattice (n-best mode does not score ARPA LMs)")
        if self.write_lattices or self.kaldi_lattices is not None:
            raise ConfigError("--write-lattices/--kaldi-lattices do not carry ARPA scores: "
                              "leave them out with --ngram-lm")

    def _check_kaldi_outputs(self) -> None:
        """The Kaldi output options, checked before any work starts."""
        if self.kaldi_lattices is not None:
            from rescorer.formats.kaldi_specifier import write_specifier

            write_specifier(self.kaldi_lattices)  # raises ConfigError when malformed
            if self.mode == "nbest":
                raise ConfigError("--kaldi-lattices writes expanded lattices: it needs --mode lattice")
        if self.out == "-" and (self.kaldi_lattices is not None or self.kaldi_nbest):
            raise ConfigError("--kaldi-lattices/--kaldi-nbest need an output folder (got --out -)")

    @property
    def to_stdout(self) -> bool:
        """True when the 1-best goes to stdout (``--out -``)."""
        return self.out == "-"


def parse_shard(text: str) -> Tuple[int, int]:
    """``"I/N"`` -> (I, N), with 1 <= I <= N <= ``MAX_SHARDS``.

    Examples:
      ``"2/8"`` -> (2, 8); Kaldi's ``JOB/N`` and Slurm's ``$SLURM_ARRAY_TASK_ID/N`` fit.

    Raises:
      ConfigError: not two integers, or out of range.
    """
    parts = text.split("/")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ConfigError(f"--shard {text!r} is not I/N (two positive integers, e.g. 3/8)")
    index, count = int(parts[0]), int(parts[1])
    if not 1 <= index <= count <= MAX_SHARDS:
        raise ConfigError(f"--shard {text!r}: need 1 <= I <= N <= {MAX_SHARDS}")
    return index, count
