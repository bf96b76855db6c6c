"""Token streams and batches with sentence resets.

A corpus becomes one contiguous stream of (input, target) pairs. Sentence
``w1 .. wn`` contributes inputs ``<bos> w1 .. wn`` and targets
``w1 .. wn <eos>``; ``resets`` is True exactly at its ``<bos>`` input. With a
word vocabulary (bos == eos) the inputs are the target stream shifted right by
one, starting with an ``<eos>``::

    targets:  the cat sat <eos> a dog <eos>
    inputs:   <eos> the cat sat <eos> a dog
    resets:   1     0   0   0   1     0 0

Training rows (``contiguous_rows``) cut the stream PTB-style into B equal
rows; a row may start mid-sentence, where the state starts from the initial
state. Evaluation rows (``sentence_rows``) start at sentence boundaries and
are padded, so every position sees exactly its sentence's history.

These in-memory functions define the batching contract. Training and
evaluation read the same rows from a token cache (``rescorer.data.rows``),
which the tests check against them; the benchmarks use them as the baseline.
"""
from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.data.vocab import Vocabulary

# Target id of padding positions; torch's cross_entropy ignores it by default.
IGNORE_INDEX = -100


@dataclass
class TokenStream:
    """A corpus as one flat stream.

    Attributes:
      inputs:
        1-D int64 tensor of shape (T,), input token ids.
      targets:
        1-D int64 tensor of shape (T,), the token to predict at each position.
      resets:
        1-D bool tensor of shape (T,), True at each sentence's ``<bos>`` input.
      words:
        Number of text words (not counting ``<eos>``).
      oov_words:
        Number of those words the vocabulary maps (partly) to ``<unk>``.
    """

    inputs: Tensor
    targets: Tensor
    resets: Tensor
    words: int
    oov_words: int

    def __len__(self) -> int:
        return self.inputs.shape[0]


@dataclass
class Batch:
    """B parallel rows of a stream.

    Attributes:
      inputs:
        2-D int64 tensor of shape (B, T), input ids.
      targets:
        2-D int64 tensor of shape (B, T), target ids, ``IGNORE_INDEX`` on padding.
      resets:
        2-D bool tensor of shape (B, T), True at sentence starts (and on padding).
    """

    inputs: Tensor
    targets: Tensor
    resets: Tensor

    def rows(self, start: int, stop: int) -> "Batch":
        """Rows [start, stop), e.g. one DDP rank's share."""
        return Batch(self.inputs[start:stop], self.targets[start:stop], self.resets[start:stop])

    def segments(self, bptt: int) -> Iterator["Batch"]:
        """Consecutive column slices of at most ``bptt`` tokens covering every column."""
        for index in range(self.num_segments(bptt)):
            yield self.segment(index, bptt)

    def segment(self, index: int, bptt: int) -> "Batch":
        """Columns [index * bptt, (index + 1) * bptt)."""
        columns = slice(index * bptt, (index + 1) * bptt)
        return Batch(self.inputs[:, columns], self.targets[:, columns], self.resets[:, columns])

    def num_segments(self, bptt: int) -> int:
        return -(-self.inputs.shape[1] // bptt)

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.inputs.to(device), self.targets.to(device), self.resets.to(device))


def encode_sentences(sentences: Sequence[Sequence[str]], vocab: Vocabulary) -> TokenStream:
    """Encode sentences with ``vocab.encode_word`` into one stream.

    Args:
      sentences:
        Lists of words, without ``<eos>`` (from ``read_sentences``).
      vocab:
        Maps each word to one or more LM tokens.

    Returns:
      The stream; its length is the number of LM tokens plus one ``<eos>`` per sentence.
    """
    cache = {}
    flat: List[int] = []
    lengths: List[int] = []
    oov_words = 0
    words = 0
    for sentence in sentences:
        start = len(flat)
        for word in sentence:
            entry = cache.get(word)
            if entry is None:
                entry = cache[word] = (vocab.encode_word(word), vocab.is_oov(word))
            flat.extend(entry[0])
            oov_words += entry[1]
        flat.append(vocab.eos_id)
        lengths.append(len(flat) - start)
        words += len(sentence)
    targets = torch.tensor(flat, dtype=torch.int64)  # (T,)
    starts = torch.zeros(len(flat), dtype=torch.bool)
    ends = torch.tensor(lengths, dtype=torch.int64).cumsum(0)  # (sentences,) end offsets
    starts[0] = True
    starts[ends[:-1]] = True
    inputs = torch.roll(targets, 1).masked_fill(starts, vocab.bos_id)  # (T,)
    return TokenStream(inputs, targets, starts, words, oov_words)


def contiguous_rows(stream: TokenStream, rows: int) -> Batch:
    """PTB-style batchify: drop the tail that does not fill B rows, cut the rest into B rows.

    ::

        stream a b c d e f g h i j (rows=3)  ->  a b c
                                                 d e f
                                                 g h i     (j dropped)
    """
    width = len(stream) // rows
    if width == 0:
        raise ValueError(f"stream of {len(stream)} tokens is shorter than {rows} rows")
    used = slice(0, width * rows)
    return Batch(
        stream.inputs[used].view(rows, width),  # (B, T)
        stream.targets[used].view(rows, width),
        stream.resets[used].view(rows, width),
    )


def sentence_rows(stream: TokenStream, rows: int) -> Batch:
    """Cut the stream at sentence boundaries into at most B rows of about equal length, padded.

    Every row starts with a reset and padding positions have target
    ``IGNORE_INDEX``, so scoring the rows covers every token exactly once,
    each with exactly its own sentence's history.
    """
    starts = torch.nonzero(stream.resets).squeeze(1)  # (sentences,) offsets
    total = len(stream)
    # Row r begins at the first sentence start at or after r * total / B.
    wanted = torch.arange(rows, dtype=torch.int64) * total // rows  # (B,)
    first = torch.searchsorted(starts, wanted).clamp(max=starts.shape[0] - 1)
    bounds = torch.unique(starts[first]).tolist() + [total]
    lengths = [stop - start for start, stop in zip(bounds[:-1], bounds[1:])]
    count, width = len(lengths), max(lengths)
    inputs = torch.zeros(count, width, dtype=torch.int64)
    targets = torch.full((count, width), IGNORE_INDEX, dtype=torch.int64)
    resets = torch.ones(count, width, dtype=torch.bool)
    for row, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        inputs[row, : stop - start] = stream.inputs[start:stop]
        targets[row, : stop - start] = stream.targets[start:stop]
        resets[row, : stop - start] = stream.resets[start:stop]
    return Batch(inputs, targets, resets)


def shard_rows(total_rows: int, rank: int, world_size: int) -> Tuple[int, int]:
    """Rows [start, stop) of rank ``rank`` when ``total_rows`` rows are split over ``world_size``."""
    per_rank, extra = divmod(total_rows, world_size)
    start = rank * per_rank + min(rank, extra)
    return start, start + per_rank + (rank < extra)
