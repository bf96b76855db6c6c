"""Post-process a raw pocketsphinx HTK lattice into the project's SLF conventions.

pocketsphinx 5.1.1 ``Lattice.write_htk`` writes words on nodes, ``a=`` (the
acoustic score of the word on the source node, with the filler penalty folded
into links entering filler nodes) and ``p=``, but no LM score, in reverse node
order, with placeholder links (``a`` = -424242 internal units). This module
(see ``shared/data/asr-dev/README.md``, "SLF conventions"):

1. drops the placeholder links (a < -40000 nats);
2. computes ``l`` on link S->E = ln P(W(E) | history), the history being the
   last two real words of the best path into S under pocketsphinx's bestpath
   recursion (one Viterbi state per link, score a + lmscale*l + wdpenalty,
   fillers transparent to the LM). Links out of the start node get the bigram
   P(w | <s>), links into the end node P(</s> | ...), links into fillers 0;
3. optionally prunes links by posterior ``p`` (never a protected link, i.e.
   the decoder's own 1-best path), keeps only nodes/links on a start->end
   path, renumbers nodes in topological order (start 0, end N-1) and writes
   the SLF with a header (lmscale, wdpenalty).
"""
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

FILLER_SYMBOLS = frozenset(["!NULL", "!SENT_START", "!SENT_END"])
PLACEHOLDER_BELOW = -40000.0  # pocketsphinx's -424242 internal units = -43440 nats
LM_SCALE = 9.5  # pocketsphinx bestpathlw
WORD_PENALTY = math.log(0.65) * 9.5 / 6.5  # ln(wip) * bestpathlw / lw
HISTORY_BEAM = 50.0  # nats; see compute_lm_scores
_FIELD = re.compile(r"(\w+)=(\S+)")

# LM callback: (word, history most recent LAST) -> natural-log probability.
LanguageModel = Callable[[str, Tuple[str, ...]], float]


@dataclass
class RawLattice:
    """A word-on-node lattice: parallel lists, node and link ids are list positions."""

    times: List[float] = field(default_factory=list)  # node start time (s)
    words: List[str] = field(default_factory=list)  # node word (W=)
    variants: List[int] = field(default_factory=list)  # pronunciation variant (v=)
    sources: List[int] = field(default_factory=list)  # link source node
    targets: List[int] = field(default_factory=list)  # link destination node
    acoustic: List[float] = field(default_factory=list)  # link a=
    posterior: List[float] = field(default_factory=list)  # link p=
    lm: List[float] = field(default_factory=list)  # link l= (filled by compute_lm_scores)
    start: int = 0
    end: int = 0


def parse_htk(text: str) -> RawLattice:
    """Parse pocketsphinx's ``write_htk`` output (or any word-on-node SLF)."""
    lattice = RawLattice()
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        fields = dict(_FIELD.findall(line))
        if "I" in fields:
            assert int(fields["I"]) == len(lattice.times), "nodes must be numbered 0..N-1"
            lattice.times.append(float(fields["t"]))
            lattice.words.append(fields["W"])
            lattice.variants.append(int(fields.get("v", 1)))
        elif "J" in fields:
            lattice.sources.append(int(fields["S"]))
            lattice.targets.append(int(fields["E"]))
            lattice.acoustic.append(float(fields["a"]))
            lattice.posterior.append(float(fields.get("p", 0.0)))
            lattice.lm.append(float(fields.get("l", 0.0)))
        elif "start" in fields:
            lattice.start = int(fields["start"])
        elif "end" in fields:
            lattice.end = int(fields["end"])
    return lattice


def keep_links(lattice: RawLattice, keep: Sequence[bool]) -> RawLattice:
    """A copy with only the links where ``keep`` is True (nodes unchanged)."""
    chosen = [index for index, flag in enumerate(keep) if flag]
    pick = lambda values: [values[index] for index in chosen]  # noqa: E731
    return RawLattice(
        list(lattice.times), list(lattice.words), list(lattice.variants),
        pick(lattice.sources), pick(lattice.targets), pick(lattice.acoustic),
        pick(lattice.posterior), pick(lattice.lm), lattice.start, lattice.end,
    )


def topological_order(lattice: RawLattice) -> List[int]:
    """Node ids in topological order (Kahn, ties by time then id); start first."""
    incoming = [0] * len(lattice.times)
    exits: List[List[int]] = [[] for _ in lattice.times]
    for source, target in zip(lattice.sources, lattice.targets):
        incoming[target] += 1
        exits[source].append(target)
    ready = sorted((lattice.times[n], n) for n in range(len(incoming)) if incoming[n] == 0)
    order = []
    while ready:
        _, node = ready.pop(0)
        order.append(node)
        for target in exits[node]:
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append((lattice.times[target], target))
        ready.sort()
    if len(order) != len(incoming):
        raise ValueError("lattice has a cycle")
    return order


def _is_real(lattice: RawLattice, node: int) -> bool:
    return lattice.words[node] not in FILLER_SYMBOLS


def compute_lm_scores(
    lattice: RawLattice,
    language_model: LanguageModel,
    lm_scale: float = LM_SCALE,
    word_penalty: float = WORD_PENALTY,
    history_beam: float = HISTORY_BEAM,
) -> None:
    """Fill ``lattice.lm`` with the fixed trigram scores (see the module docstring).

    The recursion keeps, per node, the best path score for each distinct
    two-word history entering it; the fixed ``l`` of a link uses the history
    of the single best path into its source node. Histories scoring more than
    ``history_beam`` below the best one at a node are dropped (exact recursion:
    ``math.inf``; its Python cost grows with histories x exits per node).
    """
    exits: List[List[int]] = [[] for _ in lattice.times]
    for link, source in enumerate(lattice.sources):
        exits[source].append(link)
    # node -> {history (oldest first, <= 2 words): best path score into the node}
    arriving: Dict[int, Dict[Tuple[str, ...], float]] = {lattice.start: {("<s>",): 0.0}}
    lattice.lm = [0.0] * len(lattice.sources)
    for node in topological_order(lattice):
        histories = arriving.pop(node, None)
        if not histories:
            continue
        best_history = max(histories, key=histories.__getitem__)
        floor = histories[best_history] - history_beam
        histories = {h: score for h, score in histories.items() if score >= floor}
        for link in exits[node]:
            target = lattice.targets[link]
            if target == lattice.end:
                word = "</s>"
            elif _is_real(lattice, target):
                word = lattice.words[target]
            else:  # filler: no LM score, no word penalty, history passes through
                _relax(arriving, target, histories, lattice.acoustic[link])
                continue
            lattice.lm[link] = language_model(word, best_history)
            extended: Dict[Tuple[str, ...], float] = {}
            for history, score in histories.items():
                total = score + lattice.acoustic[link] + word_penalty
                total += lm_scale * language_model(word, history)
                new_history = (history[-1], word)
                if total > extended.get(new_history, -math.inf):
                    extended[new_history] = total
            _relax(arriving, target, extended, 0.0)


def _relax(
    arriving: Dict[int, Dict[Tuple[str, ...], float]],
    node: int,
    histories: Dict[Tuple[str, ...], float],
    offset: float,
) -> None:
    """Merge ``histories`` (+ ``offset``) into the best scores arriving at ``node``."""
    table = arriving.setdefault(node, {})
    for history, score in histories.items():
        if score + offset > table.get(history, -math.inf):
            table[history] = score + offset


def connected_links(lattice: RawLattice) -> List[bool]:
    """Per link: True if it lies on some start -> end path."""
    forward = _reachable(lattice.start, lattice.sources, lattice.targets)
    backward = _reachable(lattice.end, lattice.targets, lattice.sources)
    return [s in forward and t in backward for s, t in zip(lattice.sources, lattice.targets)]


def _reachable(origin: int, sources: List[int], targets: List[int]) -> Set[int]:
    exits: Dict[int, List[int]] = {}
    for source, target in zip(sources, targets):
        exits.setdefault(source, []).append(target)
    seen, stack = {origin}, [origin]
    while stack:
        for target in exits.get(stack.pop(), []):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def clean(
    lattice: RawLattice,
    language_model: LanguageModel,
    min_posterior: float = 0.0,
    protected: Iterable[int] = (),
) -> RawLattice:
    """Drop placeholders, compute ``l``, prune by posterior, keep connected links.

    Args:
      lattice:
        Raw pocketsphinx lattice (not modified).
      language_model:
        ``(word, history) -> ln P`` with the history oldest first.
      min_posterior:
        Links with ``p`` below this are dropped (0 keeps all).
      protected:
        Link ids (in ``lattice``) never pruned, e.g. the decoder's 1-best path.
    """
    protected = set(protected)
    real = [a >= PLACEHOLDER_BELOW for a in lattice.acoustic]
    kept_ids = [index for index, flag in enumerate(real) if flag]
    lattice = keep_links(lattice, real)
    compute_lm_scores(lattice, language_model)
    keep = [p >= min_posterior or old in protected for p, old in zip(lattice.posterior, kept_ids)]
    lattice = keep_links(lattice, keep)
    return keep_links(lattice, connected_links(lattice))


def format_slf(lattice: RawLattice, utt_id: str, header_comment: str = "") -> str:
    """The SLF text: nodes renumbered in topological order (start 0, end N-1)."""
    used = {lattice.start, lattice.end, *lattice.sources, *lattice.targets}
    order = [node for node in topological_order(lattice) if node in used]
    assert order[0] == lattice.start and order[-1] == lattice.end, "start/end not extreme"
    new_id = {node: index for index, node in enumerate(order)}
    links = sorted(
        range(len(lattice.sources)),
        key=lambda j: (new_id[lattice.sources[j]], new_id[lattice.targets[j]]),
    )
    lines = [f"# {line}" for line in header_comment.splitlines()]
    lines += [
        "VERSION=1.0", f"UTTERANCE={utt_id}", f"lmscale={LM_SCALE}",
        f"wdpenalty={WORD_PENALTY:.6f}", "start=0", f"end={len(order) - 1}",
        f"N={len(order)}\tL={len(links)}",
    ]
    for index, node in enumerate(order):
        lines.append(
            f"I={index}\tt={lattice.times[node]:.2f}\tW={lattice.words[node]}"
            f"\tv={lattice.variants[node]}"
        )
    for index, link in enumerate(links):
        lines.append(
            f"J={index}\tS={new_id[lattice.sources[link]]}\tE={new_id[lattice.targets[link]]}"
            f"\ta={lattice.acoustic[link]:.2f}\tl={lattice.lm[link]:.3f}"
            f"\tp={lattice.posterior[link]:.3g}"
        )
    return "\n".join(lines) + "\n"


def decoder_path_links(
    lattice: RawLattice, segments: Sequence[Tuple[str, int]]
) -> Optional[List[int]]:
    """Link ids of the decoder's 1-best path, rebuilt from its segmentation.

    Args:
      lattice:
        The raw lattice.
      segments:
        ``(word, start_frame)`` from ``Decoder.seg()``, e.g. ("are(2)", 107),
        ("<sil>", 157), starting with "<s>" and ending with "</s>".

    Returns:
      The link ids in path order, or None if the path is not in the lattice.
      A filler segment may match any filler node (``!NULL``, or a mid-lattice
      ``!SENT_START``) starting at its frame; among the matching paths the one
      with the highest total ``a`` is taken.
    """
    exits: Dict[int, List[int]] = {}
    for link, source in enumerate(lattice.sources):
        exits.setdefault(source, []).append(link)
    frontier: Dict[int, Tuple[float, List[int]]] = {lattice.start: (0.0, [])}
    for word, frame in segments[1:]:
        base, _, variant = word.partition("(")
        variant_id = int(variant.rstrip(")") or 1)
        reached: Dict[int, Tuple[float, List[int]]] = {}
        for node, (score, path) in frontier.items():
            for link in exits.get(node, []):
                target = lattice.targets[link]
                if base == "</s>":
                    fits = target == lattice.end
                elif base.startswith(("<", "[")):
                    fits = not _is_real(lattice, target) and target != lattice.end
                else:
                    fits = (lattice.words[target], lattice.variants[target]) == (base, variant_id)
                fits = fits and (base == "</s>" or round(lattice.times[target] * 100) == frame)
                total = score + lattice.acoustic[link]
                if fits and total > reached.get(target, (-math.inf,))[0]:
                    reached[target] = (total, path + [link])
        frontier = reached
    return frontier[lattice.end][1] if lattice.end in frontier else None
