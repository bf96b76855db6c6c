"""--shard I/N + merge, --jobs and --batch-size give the outputs of one plain run, byte for byte.

Real asr-dev lattices (pocketsphinx SLF) and the shipped demo LM, plus a
corrupt file and a repeated utterance id, so failures are merged too.
"""
import gzip
import json
import shutil
from pathlib import Path

import pytest

from rescorer.errors import ConfigError
from rescorer.rescoring.combine import Scales
from rescorer.outputs.plots import plotting_available
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.grid import parse_grid
from rescorer.rescoring.inputs import shard_of
from rescorer.rescoring.merge import merge_shards
from rescorer.rescoring.pipeline import run_rescore

REPO = Path(__file__).resolve().parents[2]
ASR_DEV = REPO.parent / "shared" / "data" / "asr-dev"
MODEL = REPO / "lattices" / "demo-lm.pt"
COUNT = 9

pytestmark = pytest.mark.skipif(not (ASR_DEV / "lat").is_dir(), reason="needs ../shared/data/asr-dev")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Nine real lattices, a corrupt gzip file and a second copy of dev-0002 (same id)."""
    folder = tmp_path_factory.mktemp("inputs")
    for path in sorted((ASR_DEV / "lat").iterdir())[:COUNT]:
        shutil.copy(path, folder / path.name)
    data = (ASR_DEV / "lat" / "dev-0001.slf.gz").read_bytes()
    (folder / "broken.slf.gz").write_bytes(data[:40])  # truncated gzip: a whole-file failure
    (folder / "zz-copy.slf.gz").write_bytes(gzip.compress(gzip.decompress(
        (ASR_DEV / "lat" / "dev-0002.slf.gz").read_bytes())))
    return folder


def run(inputs, out, **overrides):
    settings = dict(lattices=[inputs], model=MODEL, out=str(out), refs=ASR_DEV / "text", nbest=5,
                    beam=8.0, device="cpu", scales=Scales(word_penalty=-0.5))
    settings.update(overrides)
    return run_rescore(RescoreConfig(**settings))


def outputs(folder: Path):
    """onebest.txt, nbest.jsonl and summary.json up to its trailing "run" entry, as bytes."""
    summary = (folder / "summary.json").read_bytes()
    head, run = summary.split(b'\n "run": ')
    assert b'"seconds"' in run  # the run entry is last, so everything before it must match
    return (folder / "onebest.txt").read_bytes(), (folder / "nbest.jsonl").read_bytes(), head


@pytest.mark.parametrize("grid", [None, [0.0, 0.5, 1.5], parse_grid(["lm=0,0.5,1.5", "wp=-2,-0.5,1"])],
                         ids=["plain", "grid", "grid-2d"])
def test_shards_then_merge_equal_one_run_byte_for_byte(inputs, tmp_path, grid):
    single = run(inputs, tmp_path / "single", grid=grid)
    assert len(single.results) == COUNT
    assert sorted((f.path.name, f.utt_id) for f in single.failures) == [
        ("broken.slf.gz", None), ("zz-copy.slf.gz", "dev-0002")]
    shards = []
    for index in (1, 2, 3):
        report = run(inputs, tmp_path / f"shard{index}", grid=grid, shard=(index, 3))
        assert sorted(report.results) == sorted(u for u in single.results if shard_of(u, 3) == index)
        shards.append(tmp_path / f"shard{index}")
    merged = merge_shards(shards[::-1], tmp_path / "merged")
    assert outputs(tmp_path / "merged") == outputs(tmp_path / "single")
    assert [(label, stats) for label, stats in merged.wer_rows] == single.wer_rows
    assert merged.grid == single.grid and merged.best_point == single.best_point
    if grid is not None:
        assert len({stats.errors for _, stats in single.grid}) > 1  # the choice is a real one
        assert (tmp_path / "merged" / "wer_grid.png").exists() == plotting_available()
        records = [json.loads(line) for line in (shards[0] / "utterances.jsonl").open()]
        points = records[0]["grid"]["points"]
        assert len(points) == len(single.grid)  # every point kept, each distinct hypothesis once:
        assert len(records[0]["grid"]["hypotheses"]) < sum(len(p["nbest"]) for p in points)
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert summary["counts"] == {"lattices": COUNT + 1, "rescored": COUNT, "failed": 1, "failed_files": 1}
    assert summary["run"]["merged_from"] == [str(path) for path in shards[::-1]]


def test_jobs_and_batch_size_do_not_change_the_outputs(inputs, tmp_path):
    grid = [0.5, 1.0]
    run(inputs, tmp_path / "a", grid=grid, jobs=1, batch_size=16)
    for name, jobs, batch_size in (("b", 2, 16), ("c", 2, 1), ("d", 1, 4)):
        report = run(inputs, tmp_path / name, grid=grid, jobs=jobs, batch_size=batch_size)
        assert outputs(tmp_path / name) == outputs(tmp_path / "a"), name
        # Under --jobs 2 too, the repeated id's message names its file (issue 8 item 5).
        repeated = [f.message for f in report.failures if f.utt_id == "dev-0002"]
        assert repeated == [f"{inputs / 'zz-copy.slf.gz'}: utterance dev-0002: utterance id appears "
                            f"twice (expected unique ids across all inputs; skipped the second)"]


def test_one_file_of_many_lattices_feeds_every_worker(tmp_path, monkeypatch):
    """One k2 file of 4 lattices, --jobs 2: two workers prune, then rescore, its lattices at
    the same time, and the outputs equal one process's."""
    import multiprocessing
    import os

    from rescorer.formats.detect import iter_lattices
    from rescorer.formats.k2_pt import write_k2
    from rescorer.lattice.symbols import SymbolTable
    from rescorer.rescoring import parallel

    symbols = SymbolTable()
    lattices = list(iter_lattices(sorted((ASR_DEV / "lat").iterdir())[:4], symbols))
    write_k2(tmp_path / "all.pt", lattices)
    symbols.write(tmp_path / "words.txt")
    barrier = multiprocessing.get_context("fork").Barrier(2)  # inherited by the forked workers
    log = tmp_path / "units.log"
    original = parallel.run_unit

    def spy(batch, *args):
        barrier.wait(timeout=60)  # passes only when two processes hold a unit at once
        with log.open("a") as handle:
            handle.write(f"{os.getpid()} {' '.join(batch.utt_ids)}\n")
        original(batch, *args)

    pruners = tmp_path / "prune.log"
    prune_items = parallel.prune_items
    prune_barrier = multiprocessing.get_context("fork").Barrier(2)

    def prune_spy(items, *args):
        if not pruners.exists() or str(os.getpid()) not in pruners.read_text().split():
            prune_barrier.wait(timeout=60)  # each worker's first share: both prune at once
        with pruners.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        return prune_items(items, *args)

    monkeypatch.setattr(parallel, "run_unit", spy)
    monkeypatch.setattr(parallel, "prune_items", prune_spy)
    report = run(tmp_path / "all.pt", tmp_path / "out", words=tmp_path / "words.txt", refs=None,
                 jobs=2, batch_size=16)
    units = [line.split() for line in log.read_text().splitlines()]
    assert len({unit[0] for unit in units}) == 2 and os.getpid() not in {int(u[0]) for u in units}
    assert sorted(utt for unit in units for utt in unit[1:]) == [lat.utt_id for lat in lattices]
    assert sorted(report.results) == [lat.utt_id for lat in lattices] and report.files == 1
    assert len(set(pruners.read_text().split())) == 2
    monkeypatch.undo()
    run(tmp_path / "all.pt", tmp_path / "one", words=tmp_path / "words.txt", refs=None, jobs=1)
    assert outputs(tmp_path / "out") == outputs(tmp_path / "one")


def test_merge_refuses_incomplete_or_inconsistent_shards(inputs, tmp_path):
    run(inputs, tmp_path / "s1", shard=(1, 2))
    with pytest.raises(ConfigError, match=r"need shards 1..2 once each \(missing \[2\]"):
        merge_shards([tmp_path / "s1"], tmp_path / "m")
    run(inputs, tmp_path / "s2", shard=(2, 2), nbest=3)
    with pytest.raises(ConfigError, match="option 'nbest' differs"):
        merge_shards([tmp_path / "s1", tmp_path / "s2"], tmp_path / "m")
    run(inputs, tmp_path / "plain")
    with pytest.raises(ConfigError, match="not a shard output"):
        merge_shards([tmp_path / "s1", tmp_path / "plain"], tmp_path / "m")


def test_shard_rule_depends_only_on_the_utterance_id():
    ids = [f"utt-{index:05d}" for index in range(3000)]
    counts = [sum(1 for utt in ids if shard_of(utt, 3) == index) for index in (1, 2, 3)]
    assert sum(counts) == 3000 and min(counts) > 900  # every id in exactly one shard, balanced
    assert shard_of("dev-0001", 7) == 3  # crc32(b"dev-0001") = 1459567867 = 7 * 208509695 + 2


def test_reading_in_workers_gives_the_table_and_ids_of_one_reader(inputs, tmp_path):
    """Workers read and prune file groups: the same items, table, ids and facts as one reader."""
    import torch

    from rescorer.rescoring.inputs import input_files
    from rescorer.rescoring.parallel import read_parallel
    from rescorer.rescoring.read_pruning import read_inputs
    from rescorer.rescoring.session import load_context
    from rescorer.rescoring.timing import Timings

    config = RescoreConfig(lattices=[inputs], model=MODEL, out=str(tmp_path / "out"),
                           refs=ASR_DEV / "text", beam=8.0, jobs=2, device="cpu")
    files = input_files([inputs])
    one, two, timings = load_context(config), load_context(config), Timings()
    serial, serial_facts = read_inputs(files, one.symbols, one, config)
    parallel, parallel_facts = read_parallel(files, two, config, timings)
    assert one.symbols.to_text() == two.symbols.to_text() and len(one.symbols) > 100
    assert [(path, item.utt_id) for path, item in parallel] == [(path, item.utt_id) for path, item in serial]
    for (_, mine), (_, other) in zip(serial, parallel):
        if hasattr(mine, "word_ids"):
            assert torch.equal(mine.word_ids, other.word_ids) and torch.equal(mine.labels, other.labels)
            assert torch.equal(mine.src, other.src) and torch.equal(mine.am_scores, other.am_scores)
        else:
            assert str(mine.error) == str(other.error)
    assert serial_facts == parallel_facts and len(serial_facts) == COUNT
    assert all(facts.oracle is not None for facts in serial_facts.values())
    pruned = sum(item.num_arcs for _, item in serial if hasattr(item, "num_arcs"))
    assert pruned < sum(facts.arcs for facts in serial_facts.values()) / 10  # really pruned
    assert timings.cpu("read") > 0 and timings.cpu("prune") > 0  # the workers' work is counted

def test_a_shard_prunes_only_its_own_lattices(inputs, tmp_path):
    """Under --shard the other shards' lattices pass as read (select_inputs drops them)."""
    from dataclasses import replace

    from rescorer.rescoring.inputs import input_files
    from rescorer.rescoring.read_pruning import prune_items, read_items
    from rescorer.rescoring.session import load_context

    config = RescoreConfig(lattices=[inputs], model=MODEL, out=str(tmp_path / "out"), beam=8.0,
                           device="cpu", shard=(2, 3))
    context = load_context(config)
    items = list(read_items(input_files([inputs]), context.symbols))
    pruned, facts = prune_items(items, context, config, context.symbols)
    _, all_facts = prune_items(items, context, replace(config, shard=None), context.symbols)
    lattices = [(item, kept) for (_, item), (_, kept) in zip(items, pruned) if hasattr(item, "num_arcs")]
    mine = [utt for utt in all_facts if shard_of(utt, 3) == 2]
    assert mine and len(mine) < len(all_facts) and sorted(facts) == sorted(mine)
    for item, kept in lattices:
        if shard_of(item.utt_id, 3) == 2:
            assert kept.num_arcs < item.num_arcs and facts[item.utt_id] == all_facts[item.utt_id]
        else:
            assert kept is item


@pytest.mark.parametrize("mode", ["lattice", "nbest"])
def test_a_k2_file_prunes_chunk_by_chunk_as_lattice_by_lattice(tmp_path, monkeypatch, mode):
    """k2 chunks go to pruning as they are read: the items and facts of one lattice at a time,
    with a lattice that has no path (its failure keeps its place) and chunks of a few lattices."""
    from functools import partial

    import torch

    from rescorer.formats import detect
    from rescorer.formats.detect import iter_lattices
    from rescorer.formats.k2_pt import write_k2
    from rescorer.lattice.fsavec import Lattice
    from rescorer.lattice.symbols import SymbolTable
    from rescorer.rescoring.read_pruning import prune_items, read_inputs, read_items
    from rescorer.rescoring.session import load_context

    symbols = SymbolTable()
    lattices = list(iter_lattices(sorted((ASR_DEV / "lat").iterdir())[:6], symbols))
    word = lattices[0].word_ids[:1]
    no_path = Lattice(utt_id="no-path", num_states=4, src=torch.tensor([0, 2]),
                      dst=torch.tensor([1, 3]), labels=torch.cat([word, torch.tensor([-1])]),
                      word_splits=torch.tensor([0, 1, 1]), word_ids=word,
                      am_scores=torch.tensor([-1.0, -1.0]), ngram_scores=torch.zeros(2))
    path = tmp_path / "all.pt"
    write_k2(path, lattices[:3] + [no_path] + lattices[3:])
    symbols.write(tmp_path / "words.txt")
    chunk = 2 * max(lattice.num_arcs for lattice in lattices)
    monkeypatch.setattr(detect, "read_k2_chunks", partial(detect.read_k2_chunks, max_arcs=chunk))
    config = RescoreConfig(lattices=[path], words=tmp_path / "words.txt", model=MODEL,
                           out=str(tmp_path / "out"), refs=ASR_DEV / "text", beam=8.0,
                           device="cpu", mode=mode)
    context = load_context(config)
    batched, facts = read_inputs([path], context.symbols, context, config)
    single, single_facts = prune_items(read_items([path], context.symbols), context, config,
                                       context.symbols)
    assert facts == single_facts and len(facts) == 6
    assert [item.utt_id for _, item in batched] == [item.utt_id for _, item in single]
    assert "no path" in str(batched[3][1].error)
    for (_, mine), (_, other) in zip(batched, single):
        if isinstance(mine, Lattice):
            for name in ("src", "dst", "labels", "word_splits", "word_ids", "am_scores",
                         "ngram_scores"):
                assert torch.equal(getattr(mine, name), getattr(other, name)), name
            assert (mine.num_arcs < facts[mine.utt_id].arcs) == (mode == "lattice")
        else:
            assert str(mine.error) == str(other.error)
