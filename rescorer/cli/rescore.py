"""``fprescore rescore``: rescore lattices exactly with a fixed-point LM.

Thin: builds a ``RescoreConfig``, runs ``rescorer.rescoring.pipeline`` with a
rich progress bar on stderr, and prints the summary, failure and WER tables
on stderr. Only ``--out -`` writes to stdout (the 1-best, nothing else).
"""
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.text import Text

from rescorer.cli.common import err_console, guarded, quiet_imports
from rescorer.rescoring.defaults import DEFAULT_BATCH_SIZE

# Measured on asr-dev (docs/results/rescoring.md): beam 16 gave the WER of beam 24
# (40.26% vs 40.29%, PTB-mini K=4) with 42% fewer arcs to expand.
DEFAULT_BEAM = 16.0

SCORES = "Score combination"
SEARCH = "Pruning, expansion and search"
COMPUTE = "Compute"
EVALUATE = "References and WER"
OUTPUT = "Outputs and failures"


class UtteranceProgress:
    """A rich progress display on stderr counting rescored and failed utterances."""

    def __enter__(self) -> "UtteranceProgress":
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("rescoring"), BarColumn(),
            TextColumn("{task.completed} done, {task.fields[failed]} failed"),
            TimeElapsedColumn(), console=err_console, transient=True,
        )
        self.progress.__enter__()
        self.task = self.progress.add_task("rescoring", total=None, failed=0)
        self.failed = 0
        return self

    def utterance_done(self, utt_id: Optional[str], ok: bool, message: Optional[str] = None) -> None:
        """Advance the bar by one utterance; print a failure as one unwrapped line."""
        if ok:
            self.progress.advance(self.task)
            return
        self.failed += 1
        self.progress.update(self.task, failed=self.failed)
        self.progress.console.print(
            Text.assemble(("skipped: ", "bold yellow"), message or str(utt_id)), soft_wrap=True
        )

    def ngram_progress(self, done: int, total: int) -> None:
        """Show the ``--ngram-lm`` parse (bytes of the file read) as its own bar."""
        if not hasattr(self, "ngram_task"):
            self.ngram_task = self.progress.add_task("loading the ARPA n-gram", total=total, failed=0)
        self.progress.update(self.ngram_task, completed=done, total=total)
        if done >= total:
            self.progress.remove_task(self.ngram_task)

    def __exit__(self, *exc_info: object) -> None:
        self.progress.__exit__(*exc_info)


@guarded
def rescore_command(
    lattices: Annotated[List[Path], typer.Argument(
        help="Lattice files or folders: k2 .pt, HTK SLF (.slf, .lat, gzipped ok) or Kaldi archives "
             "(binary or text), detected from the content; or Kaldi specifiers "
             "(ark:FILE, ark:-, 'ark:gunzip -c lat.1.gz|', scp:FILE).", show_default=False)],
    model: Annotated[Path, typer.Option(
        "--model", "-m", help="LM checkpoint written by `fprescore train`.", show_default=False)],
    out: Annotated[str, typer.Option(
        "--out", "-o", help="Output folder (onebest.txt, nbest.jsonl, ...); '-' prints only the "
                            "1-best, Kaldi text, to stdout.", show_default=False)],
    words: Annotated[Optional[Path], typer.Option(
        "--words", "-w", help="words.txt symbol table; required for k2 and Kaldi text lattices, "
                              "optional for SLF (words are spelled out there).")] = None,
    am_scale: Annotated[float, typer.Option(
        "--am-scale", help="Weight of the lattice's acoustic score.", rich_help_panel=SCORES)] = 1.0,
    ngram_scale: Annotated[float, typer.Option(
        "--ngram-scale", help="Weight of the lattice's old n-gram score (for SLF it already includes "
                              "the header's lmscale and wdpenalty; 1 keeps the first pass intact).",
        rich_help_panel=SCORES)] = 1.0,
    lm_scale: Annotated[float, typer.Option(
        "--lm-scale", help="Weight of the neural LM log-probability (natural log, <eos> included). "
                           "Tune it with --grid.", rich_help_panel=SCORES)] = 1.0,
    word_penalty: Annotated[float, typer.Option(
        "--word-penalty", help="Added per lattice word (negative values favour fewer words).",
        rich_help_panel=SCORES)] = 0.0,
    oov_penalty: Annotated[float, typer.Option(
        "--oov-penalty", help="Added to the neural LM log-prob of each word the LM only knows as "
                              "<unk>.", rich_help_panel=SCORES)] = 0.0,
    ngram_lm: Annotated[Optional[Path], typer.Option(
        "--ngram-lm", help="ARPA back-off n-gram (.arpa, .arpa.gz; any order) scored exactly on the "
                           "lattice expanded to both LMs' histories (lattice mode). Words map to it "
                           "as to the neural LM (clitic split, else <unk>).",
        rich_help_panel=SCORES, show_default=False)] = None,
    ngram_source: Annotated[str, typer.Option(
        "--ngram-source", help="'lattice': keep the lattice's n-gram score and add the ARPA with "
                               "--arpa-scale; 'arpa': the ARPA replaces it (weighed by --ngram-scale). "
                               "Needs --ngram-lm.", rich_help_panel=SCORES)] = "lattice",
    arpa_scale: Annotated[float, typer.Option(
        "--arpa-scale", help="Weight of the --ngram-lm log-probability with --ngram-source lattice "
                             "(log-linear).", rich_help_panel=SCORES)] = 1.0,
    interpolate: Annotated[Optional[float], typer.Option(
        "--interpolate", help="LAMBDA in [0, 1]: the LM term becomes ln((1-LAMBDA)*P_arpa + "
                              "LAMBDA*P_nnlm) per word, weighed by --lm-scale (the ARPA is not "
                              "added again). Needs --ngram-lm.", rich_help_panel=SCORES,
        show_default=False)] = None,
    ngram_cache: Annotated[Optional[Path], typer.Option(
        "--ngram-cache", help="Folder for a binary cache of --ngram-lm (reloads in a fraction of the "
                              "parse time; rebuilt when the ARPA changes). Default: no cache.",
        rich_help_panel=SCORES, show_default=False)] = None,
    mode: Annotated[str, typer.Option(
        "--mode", help="'lattice': exact expansion of the lattice to the LM's history window; "
                       "'nbest': rescore the first-pass n-best list with full sentences.",
        rich_help_panel=SEARCH)] = "lattice",
    nbest: Annotated[int, typer.Option(
        "--nbest", help="Hypotheses per utterance in nbest.jsonl (and the list size in --mode nbest).",
        rich_help_panel=SEARCH)] = 10,
    beam: Annotated[float, typer.Option(
        "--beam", help="Prune arcs further than this from the best first-pass path "
                       "(am/ngram/word-penalty scores, Kaldi lattice-prune) before expansion; "
                       "0 disables pruning.", rich_help_panel=SEARCH)] = DEFAULT_BEAM,
    max_arcs: Annotated[int, typer.Option(
        "--max-arcs", help="Most arcs an expanded lattice may have; above it the beam is halved "
                           "(up to 4 times) and the utterance fails if it still does not fit.",
        rich_help_panel=SEARCH)] = 500_000,
    history_approx: Annotated[Optional[int], typer.Option(
        "--history-approx", help="Lattice mode with an unbounded-history (sequential) model: expand "
                                 "with N LM inputs of history and score each token from the initial "
                                 "state run over only those N inputs (an (N+1)-gram approximation). "
                                 "Required for such models; the summary reports how far the 1-best's "
                                 "scores are from full-history ones. For Jacobi models it caps K.",
        rich_help_panel=SEARCH)] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Lattices rescored as one batch (pruned, expanded, searched and "
                             "LM-scored together); memory grows with it.",
        rich_help_panel=COMPUTE)] = DEFAULT_BATCH_SIZE,
    chunk_rows: Annotated[int, typer.Option(
        "--chunk-rows", help="Rows per LM matrix product (memory: rows x vocabulary floats, "
                              "and the LM states of 16 times as many histories). "
                              "Every product gets exactly this many rows (padded), so scores do "
                              "not depend on --batch-size, --jobs or --shard.",
        rich_help_panel=COMPUTE)] = 256,
    device: Annotated[str, typer.Option(
        "--device", help="auto (CUDA when available), cpu or cuda.", rich_help_panel=COMPUTE)] = "auto",
    threads: Annotated[int, typer.Option(
        "--threads", help="torch CPU threads. 1 is fastest for the many small graph operations "
                          "(and was for LM scoring too on a shared 2-core machine).",
        rich_help_panel=COMPUTE)] = 1,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", help="Worker processes (CPU), each rescoring a share of the files with one "
                             "thread: how to use several cores.", rich_help_panel=COMPUTE)] = 1,
    refs: Annotated[Optional[Path], typer.Option(
        "--refs", help="Reference transcripts, Kaldi text (uttid w1 w2 ...), for WER.",
        rich_help_panel=EVALUATE)] = None,
    cuts: Annotated[Optional[Path], typer.Option(
        "--cuts", help="References from a lhotse CutSet (supervision texts joined per cut id).",
        rich_help_panel=EVALUATE)] = None,
    grid: Annotated[Optional[List[str]], typer.Option(
        "--grid", help="Sweep NAME=SPEC, repeatable (the cartesian product is swept): NAME is "
                       "lm-scale (lm), word-penalty (wp), ngram-scale (ngram) or lambda; SPEC is "
                       "start:stop:step (stop included) or a comma list; a bare SPEC sweeps the "
                       "LM scale. Prints WER per point, writes the outputs at the best one and "
                       "wer_grid.png (a heat map for 2 or more parameters). Needs references.",
        rich_help_panel=EVALUATE)] = None,
    ignore_case: Annotated[bool, typer.Option(
        "--ignore-case", help="Compare words case-insensitively in WER (default: exact, as Kaldi's "
                              "compute-wer).", rich_help_panel=EVALUATE)] = False,
    write_lattices: Annotated[bool, typer.Option(
        "--write-lattices", help="Also write lattices.pt: the expanded lattices with nnlm_scores (k2 "
                                 "FsaVec dict layout).", rich_help_panel=OUTPUT)] = False,
    kaldi_lattices: Annotated[Optional[str], typer.Option(
        "--kaldi-lattices", help="Also write the rescored lattices as a Kaldi archive: ark:FILE "
                                 "(binary; .gz gzipped), ark,t:FILE (text). Graph cost = the new "
                                 "combined LM part; pass --acoustic-scale=AM_SCALE to Kaldi.",
        rich_help_panel=OUTPUT, show_default=False)] = None,
    kaldi_nbest: Annotated[bool, typer.Option(
        "--kaldi-nbest", help="Also write nbest.txt (keys UTTID-N), lm_cost and ac_cost, as "
                              "lattice-to-nbest + nbest-to-linear give them.",
        rich_help_panel=OUTPUT)] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Stop at the first failed utterance instead of skipping it.",
        rich_help_panel=OUTPUT)] = False,
    lowercase: Annotated[bool, typer.Option(
        "--lowercase", help="Fold lattice words to lower case before the LM lookup (outputs keep "
                            "the lattice's spelling). A warning suggests it when over 20% of the "
                            "lattice words are OOV for the LM.", rich_help_panel=SCORES)] = False,
    decode: Annotated[str, typer.Option(
        "--decode", help="viterbi: the best path; mbr: the minimum-Bayes-risk consensus (Kaldi "
                         "lattice-mbr-decode) of the rescored lattice (n-best mode: of the list), "
                         "with word confidences in nbest.jsonl and onebest.ctm when times are known. "
                         "With --grid the scale is chosen by the Viterbi 1-best.",
        rich_help_panel=SEARCH)] = "viterbi",
    mbr_scale: Annotated[float, typer.Option(
        "--mbr-scale", help="MBR posterior scale: P(path) ~ exp(S * total). 1 = Kaldi's "
                            "--acoustic-scale=AM_SCALE when --am-scale holds it; for SLF whose "
                            "n-gram score includes lmscale L, Kaldi's convention is 1/L.",
        rich_help_panel=SEARCH)] = 1.0,
    frame_shift: Annotated[float, typer.Option(
        "--frame-shift", help="Seconds per frame for CTM times of Kaldi lattices (transition ids "
                              "per arc) and frame-synchronous k2 lattices (one arc per frame).",
        rich_help_panel=OUTPUT)] = 0.01,
    shard: Annotated[Optional[str], typer.Option(
        "--shard", help="I/N: rescore only shard I of N (utterance u is in shard crc32(u) mod N + "
                        "1) and keep what `fprescore merge` needs; give every shard the same "
                        "inputs. Kaldi: --shard JOB/N with JOB=1:N.", rich_help_panel=COMPUTE)] = None,
) -> None:
    """Rescore lattices with a fixed-point LM: exact expansion, batched scoring, 1-best and n-best.

    total = am_scale*am + ngram_scale*ngram + lm_scale*nnlm + word_penalty*words
    (with --ngram-lm: see README, "N-gram LMs", and rescorer/rescoring/combine.py).
    Exit codes: 0 all utterances rescored, 3 some failed (listed on stderr),
    1 all failed or a global error (model, options, references, --out, no lattices).
    """
    with quiet_imports():  # Lazy: keeps `--help` fast.
        from rescorer.cli.tables import show_report
        from rescorer.rescoring.combine import Scales
        from rescorer.rescoring.config import RescoreConfig, parse_shard
        from rescorer.rescoring.grid import parse_grid
        from rescorer.rescoring.pipeline import run_rescore

    config = RescoreConfig(
        lattices=list(lattices), model=model, out=out, words=words,
        scales=Scales(am=am_scale, ngram=ngram_scale, lm=lm_scale, word_penalty=word_penalty,
                      arpa=arpa_scale, interpolation=interpolate),
        oov_penalty=oov_penalty, beam=beam if beam > 0 else None,
        max_arcs=max_arcs, batch_size=batch_size, chunk_rows=chunk_rows, device=device, threads=threads, jobs=jobs,
        nbest=nbest, mode=mode, history_approx=history_approx,
        grid=parse_grid(grid) if grid else None, refs=refs, cuts=cuts,
        ignore_case=ignore_case, strict=strict, write_lattices=write_lattices, lowercase=lowercase,
        kaldi_lattices=kaldi_lattices, kaldi_nbest=kaldi_nbest,
        shard=None if shard is None else parse_shard(shard),
        decode=decode, mbr_scale=mbr_scale, frame_shift=frame_shift,
        ngram_lm=ngram_lm, ngram_cache=ngram_cache, ngram_source=ngram_source,
    )
    with UtteranceProgress() as progress:
        report = run_rescore(config, progress)
    show_report(report)
