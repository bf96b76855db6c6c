"""Writing Kaldi archives: lattices (``convert --to kaldi``, rescored lattices) and n-best lists.

Lattices go to a write specifier (``kaldi_specifier``): ``ark:FILE`` or a plain
path is a binary archive of CompactLattices, ``ark,t:FILE`` the text form,
``ark:-`` stdout, ``ark:| CMD`` a pipe; a FILE ending in ``.gz`` is gzipped.
Files are written atomically.

Rescored lattices (``write_kaldi_lattices``) keep the expanded lattice as it is
(one Kaldi state per expanded state, plus the chain states of arcs with several
words). Each arc keeps its acoustic cost, ``acoustic = -am``, and its transition
ids when the lattice carries them (``kaldi_lattice.carry_transitions``); its graph
cost holds the new combined LM part in Kaldi's sign convention (a cost), scaled
so that the acoustic scale is the only scale left::

    graph = -(ngram_scale*ngram + lm_scale*nnlm + word_penalty*words)   # OOV penalty in nnlm
    graph + am_scale * acoustic = -(fprescore total)

so ``lattice-best-path --acoustic-scale=AM_SCALE --lm-scale=1`` (``lattice-scale
--acoustic-scale=AM_SCALE`` for other tools) gives fprescore's 1-best, and
``score.sh``'s LMWT sweep (``--inv-acoustic-scale=LMWT``) varies the weight of the
whole new LM part against the acoustics. The n-best output follows the same
convention (see ``write_kaldi_nbest``).
"""
import contextlib
import gzip
import subprocess
import sys
from pathlib import Path
from typing import IO, Iterable, Iterator, List, Optional, Sequence

import torch
from torch import Tensor

from rescorer.errors import ConfigError, InputFormatError
from rescorer.formats.kaldi_binary import encode_fst
from rescorer.formats.kaldi_lattice import lattice_to_fst
from rescorer.formats.kaldi_specifier import Specifier, write_specifier
from rescorer.formats.kaldi_text import format_text_fst
from rescorer.lattice.fsavec import Lattice
from rescorer.atomic import atomic_open, atomic_write_text
from rescorer.paths import PathLike


def check_key(key: str) -> None:
    """Raise ``ConfigError`` for an utterance id that cannot be a Kaldi key."""
    if not key or any(char.isspace() for char in key):
        raise ConfigError(f"utterance id {key!r} cannot be a Kaldi key (expected a non-empty "
                          "id without whitespace)")


def entry_bytes(key: str, lattice: Lattice, text: bool,
                graph_costs: Optional[Tensor] = None) -> bytes:
    """One archive entry: ``KEY `` and the binary FST, or ``KEY \\n`` + text lines + ``\\n``."""
    check_key(key)
    fst = lattice_to_fst(lattice, graph_costs)
    if text:
        return f"{key} \n{format_text_fst(fst)}\n".encode("utf-8")
    return key.encode("utf-8") + b" " + encode_fst(fst)


@contextlib.contextmanager
def open_archive(spec: Specifier) -> Iterator[IO[bytes]]:
    """A binary handle for a write specifier's target (atomic file, stdout or pipe)."""
    target = spec.target
    if target == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
    elif target.lstrip().startswith("|"):
        process = subprocess.Popen(target.lstrip()[1:], shell=True, stdin=subprocess.PIPE)
        try:
            yield process.stdin
        finally:
            process.stdin.close()
            status = process.wait()
        if status != 0:
            raise InputFormatError(f"the command exited with status {status}",
                                   path=target.lstrip()[1:].strip())
    else:
        with atomic_open(Path(target), "wb") as handle:
            if target.endswith(".gz"):
                with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as zipped:
                    yield zipped
            else:
                yield handle


def write_kaldi_archive(wspecifier: PathLike, lattices: Iterable[Lattice],
                        graph_costs: Optional[Sequence[Tensor]] = None) -> int:
    """Write lattices as CompactLattices to a Kaldi archive; return how many.

    Args:
      wspecifier:
        ``ark:FILE``, ``ark,t:FILE``, ``ark:-``, ``ark:| CMD`` or a plain path.
      lattices:
        The lattices; their transition ids are kept when they carry their own.
      graph_costs:
        Optional, one 1-D float32 tensor of shape (A_u,) per lattice: the graph
        cost of each arc (default ``-ngram_scores``).

    Raises:
      ConfigError: a bad specifier or an utterance id that cannot be a key.
    """
    spec = write_specifier(str(wspecifier))
    count = 0
    with open_archive(spec) as handle:
        for index, lattice in enumerate(lattices):
            costs = None if graph_costs is None else graph_costs[index]
            handle.write(entry_bytes(lattice.utt_id, lattice, spec.text, costs))
            count += 1
    return count


def rescored_graph_costs(lattice: Lattice, nnlm_scores: Tensor, ngram_scale: float,
                         lm_scale: float, word_penalty: float) -> Tensor:
    """1-D float32 tensor of shape (A,), the graph cost of each rescored arc.

    ``-(ngram_scale*ngram + lm_scale*nnlm + word_penalty*words)`` (see the module
    docstring); ``nnlm_scores`` already includes the OOV penalty.
    """
    words = lattice.words_per_arc.to(torch.float32)
    return -(ngram_scale * lattice.ngram_scores + lm_scale * nnlm_scores.to(torch.float32)
             + word_penalty * words)


def write_kaldi_lattices(wspecifier: PathLike, lattices: Sequence[Lattice],
                         nnlm_scores: Sequence[Tensor], scales) -> int:
    """Write rescored (expanded) lattices with the combined LM part as graph cost.

    Args:
      wspecifier:
        Where to write (see ``write_kaldi_archive``).
      lattices:
        The expanded lattices, as rescored.
      nnlm_scores:
        One 1-D float32 tensor of shape (A_u,) per lattice: each arc's neural LM
        log-probability (OOV penalty included).
      scales:
        The run's ``Scales`` (``ngram``, ``lm``, ``word_penalty``; ``am`` is the
        acoustic scale to pass to Kaldi).
    """
    costs = [rescored_graph_costs(lattice, nnlm, scales.ngram, scales.lm, scales.word_penalty)
             for lattice, nnlm in zip(lattices, nnlm_scores)]
    return write_kaldi_archive(wspecifier, lattices, costs)


def write_kaldi_nbest(out_dir: PathLike, hypotheses: Sequence, am_scale: float,
                      symbols=None) -> List[Path]:
    """Write ``nbest.txt``, ``lm_cost`` and ``ac_cost`` as ``lattice-to-nbest | nbest-to-linear``.

    Keys are ``UTTID-N`` (N = rank, from 1), as ``lattice-to-nbest`` names them.
    ``nbest.txt`` holds the words (``nbest-to-linear`` then ``int2sym.pl``); with
    ``symbols`` also ``nbest.int`` (word ids). ``ac_cost`` is ``-am`` and ``lm_cost``
    ``-(total - am_scale*am)``, the combined LM part, so that ``lm_cost +
    am_scale*ac_cost = -total`` orders each utterance's list as fprescore does
    (float64 values printed exactly).

    Args:
      out_dir:
        The output folder.
      hypotheses:
        ``outputs.text.Hypothesis`` objects (uttid, rank, words, am, total).
      am_scale:
        The run's acoustic scale.
      symbols:
        Optional ``SymbolTable`` for ``nbest.int``.

    Returns:
      The files written.
    """
    out = Path(out_dir)
    ordered = sorted(hypotheses, key=lambda hyp: (hyp.uttid, hyp.rank))
    keys = [f"{hyp.uttid}-{hyp.rank}" for hyp in ordered]
    for key in keys:
        check_key(key)
    ac_cost = [repr(-float(hyp.am)) for hyp in ordered]  # float64, printed exactly
    lm_cost = [repr(am_scale * float(hyp.am) - float(hyp.total)) for hyp in ordered]
    files = {
        "nbest.txt": [" ".join([key] + list(hyp.words)) for key, hyp in zip(keys, ordered)],
        "ac_cost": [f"{key} {cost}" for key, cost in zip(keys, ac_cost)],
        "lm_cost": [f"{key} {cost}" for key, cost in zip(keys, lm_cost)],
    }
    if symbols is not None:
        files["nbest.int"] = [" ".join([key] + [str(symbols.id(word)) for word in hyp.words])
                              for key, hyp in zip(keys, ordered)]
    written = []
    for name, lines in files.items():
        atomic_write_text(out / name, "".join(line + "\n" for line in lines))
        written.append(out / name)
    return written


def write_kaldi_fst(path: PathLike, lattice: Lattice, compact: bool = True) -> None:
    """One lattice as a bare binary FST file (no key), as ``kaldifst.Lattice.write`` does.

    ``compact=False`` writes a Lattice (``lattice4``: one transition id per arc).
    """
    with atomic_open(Path(path), "wb") as handle:
        handle.write(encode_fst(lattice_to_fst(lattice, compact=compact)))
