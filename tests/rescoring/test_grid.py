"""--grid: parsing, the best point, and a 2-D sweep equal to running each point on its own."""
import json
from dataclasses import fields, replace

import pytest

from rescorer.data.vocab import WordVocabulary
from rescorer.errors import ConfigError
from rescorer.formats.k2_pt import write_k2
from rescorer.outputs.plots import plotting_available
from rescorer.rescoring import grid as grid_module
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.grid import MAX_POINTS, best_point, heat_map, parse_grid
from rescorer.rescoring.pipeline import run_rescore

from rescoring_builders import ARCS, LM_WORDS, save_model, symbol_table, tiny_lattice, tiny_model


def test_names_aliases_and_the_bare_form():
    grid = parse_grid(["0:1:0.5"])
    assert grid.names == ("lm-scale",) and grid.points() == [(0.0,), (0.5,), (1.0,)]
    for name in ("lm", "lm-scale"):
        assert parse_grid([f"{name}=0.3,0.5"]).axes == parse_grid(["0.3,0.5"]).axes
    grid = parse_grid(["wp=-1:0:0.5", "ngram=0.5,1", "lm-scale=2"])
    assert grid.names == ("word-penalty", "ngram-scale", "lm-scale")
    assert grid.points() == [(-1.0, 0.5, 2.0), (-1.0, 1.0, 2.0), (-0.5, 0.5, 2.0), (-0.5, 1.0, 2.0),
                             (0.0, 0.5, 2.0), (0.0, 1.0, 2.0)]  # the first axis varies slowest
    assert parse_grid(["word-penalty=-2", "ngram-scale=0.25"]).names == ("word-penalty", "ngram-scale")


def test_a_point_replaces_only_its_fields():
    grid = parse_grid(["lm=1.5", "wp=-0.5"])
    base = Scales(am=0.9, ngram=0.4, lm=1.0, word_penalty=0.0)
    assert grid.scales_at(base, (1.5, -0.5)) == replace(base, lm=1.5, word_penalty=-0.5)
    assert grid.describe((1.5, -0.5)) == "lm-scale=1.5 word-penalty=-0.5"


@pytest.mark.parametrize("specs, message", [
    ([], "needs at least one [NAME=]SPEC"),
    (["bogus=0:1:1"], "unknown parameter 'bogus'"),
    (["0:1:0.5", "lm=2"], "lm-scale is swept twice"),
    (["wp=1", "word-penalty=2"], "word-penalty is swept twice"),
    (["lm=0:1"], "is not [NAME=]start:stop:step"),
    (["wp=a,b"], "is not [NAME=]start:stop:step"),
    (["lm=,"], "has no values"),
    (["lm=1:0:0.5"], "need step > 0 and stop >= start"),
    (["lm=0:1:0"], "need step > 0 and stop >= start"),
    (["lm=0:inf:1"], "must be finite"),
    (["wp=nan"], "must be finite"),
    (["lm=0.5,0.5"], "repeats a value"),
    (["lm=0:1e9:1"], f"has 1,000,000,001 points (at most {MAX_POINTS:,})"),
    (["lm=0:100:1", "wp=0:100:1"], f"--grid has 10,201 points (at most {MAX_POINTS:,})"),
])
def test_bad_grids_are_one_line_config_errors(specs, message):
    with pytest.raises(ConfigError) as caught:
        parse_grid(specs)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_exactly_max_points_is_accepted():
    assert len(parse_grid(["lm=0:99:1", "wp=0:99:1"]).points()) == MAX_POINTS


def test_a_name_whose_scales_field_is_missing_is_a_config_error(monkeypatch):
    monkeypatch.setitem(grid_module.PARAMETERS, "temperature", grid_module.Parameter("temperature"))
    with pytest.raises(ConfigError, match=r"temperature sets Scales.temperature, which this version "
                                          r"does not have"):
        parse_grid(["temperature=1,2"])
    has_lambda = "interpolation" in {item.name for item in fields(Scales)}
    if has_lambda:  # the n-gram interpolation weight: a probability
        assert parse_grid(["lambda=0:1:0.5"]).axes[0].values == (0.0, 0.5, 1.0)
        with pytest.raises(ConfigError, match=r"values must lie in \[0, 1\] \(got 1.5\)"):
            parse_grid(["lambda=0.5,1.5"])
    else:
        with pytest.raises(ConfigError, match="Scales.interpolation, which this version does not have"):
            parse_grid(["lambda=0:1:0.5"])


def test_best_point_has_fewest_errors_then_smallest_values():
    rows = [((1.0, 0.0), 5), ((0.5, 2.0), 3), ((0.5, -1.0), 3), ((2.0, -5.0), 4)]
    assert best_point(rows) == (0.5, -1.0)
    assert best_point(rows[:2]) == (0.5, 2.0)


def test_heat_map_of_three_parameters_is_the_slice_at_the_best_value_of_the_third():
    grid = parse_grid(["ngram=1,0.5", "lm=0,1,2", "wp=-1,0,1"])
    wers = {point: 10 * point[0] + point[1] + 0.1 * point[2] for point in grid.points()}
    heat = heat_map(grid, wers, (0.5, 1.0, -1.0))
    assert (heat.y_name, heat.x_name, heat.fixed) == ("lm-scale", "word-penalty", {"ngram-scale": 0.5})
    assert heat.y_values == [0.0, 1.0, 2.0] and heat.x_values == [-1.0, 0.0, 1.0]
    assert heat.wers[2][0] == wers[(0.5, 2.0, -1.0)] and heat.best == (0, 1)
    assert heat_map(parse_grid(["lm=0,1"]), {(0.0,): 1.0, (1.0,): 2.0}, (0.0,)) is None


# A 2-D sweep on three tiny lattices (no pruning, so every point searches the same material).
REFERENCES = "utt1 a c a\nx0 a d\nx1 b c\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    cheap_d = [arc if arc[2] != "d" else (1, 2, "d", -0.9, -0.1) for arc in ARCS]
    lattices = [tiny_lattice("utt1"), tiny_lattice("x0", arcs=cheap_d), tiny_lattice("x1")]
    write_k2(folder / "lats.pt", lattices)
    symbol_table().write(folder / "words.txt")
    vocabulary = WordVocabulary(LM_WORDS)
    save_model(folder / "model.pt", tiny_model(vocabulary.size), vocabulary)
    (folder / "text").write_text(REFERENCES)
    return folder


def tiny_config(folder, out, **overrides):
    settings = dict(lattices=[folder / "lats.pt"], model=folder / "model.pt", out=str(out),
                    words=folder / "words.txt", refs=folder / "text", nbest=4,
                    scales=Scales(am=1.0, ngram=0.5, lm=0.7))
    settings.update(overrides)
    return RescoreConfig(**settings)


def test_a_2d_grid_equals_running_each_point_on_its_own(tiny, tmp_path):
    grid = parse_grid(["lm=0,1,4", "wp=-3,0,3"])
    report = run_rescore(tiny_config(tiny, tmp_path / "grid", grid=grid))
    single = {}
    for point in grid.points():
        scales = grid.scales_at(Scales(am=1.0, ngram=0.5, lm=0.7), point)
        alone = run_rescore(tiny_config(tiny, tmp_path / grid.describe(point).replace(" ", "_"),
                                        scales=scales))
        single[point] = alone.wer_rows[-1][1]
    errors = {point: stats.errors for point, stats in single.items()}
    assert len({errors[(1.0, wp)] for wp in (-3.0, 0.0, 3.0)}) > 1  # the word penalty matters
    assert len({errors[(lm, 0.0)] for lm in (0.0, 1.0, 4.0)}) > 1  # and so does the LM scale
    assert report.grid == [(point, single[point]) for point in grid.points()]  # exact WER rows
    best = min(grid.points(), key=lambda point: (errors[point], point))
    assert report.best_point == best and report.best_scales == grid.scales_at(
        Scales(am=1.0, ngram=0.5, lm=0.7), best)
    best_folder = tmp_path / grid.describe(best).replace(" ", "_")
    for name in ("onebest.txt", "nbest.jsonl"):  # the outputs are those of the best point
        assert (tmp_path / "grid" / name).read_bytes() == (best_folder / name).read_bytes()
    label, stats = report.wer_rows[-1]
    assert label == f"rescored (lattice, lm_scale={best[0]:g}, word-penalty={best[1]:g})"
    assert stats == single[best]

    summary = json.loads((tmp_path / "grid" / "summary.json").read_text())
    assert summary["options"]["grid"] == {"lm-scale": [0.0, 1.0, 4.0], "word-penalty": [-3.0, 0.0, 3.0]}
    assert [row["point"] for row in summary["grid"]] == [
        {"lm-scale": lm, "word-penalty": wp} for lm, wp in grid.points()]
    assert [row["errors"] for row in summary["grid"]] == [errors[point] for point in grid.points()]
    assert summary["best_point"] == {"lm-scale": best[0], "word-penalty": best[1]}
    assert summary["best_lm_scale"] == best[0]
    if plotting_available():
        png = (tmp_path / "grid" / "wer_grid.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_nbest_mode_sweeps_the_same_points(tiny, tmp_path):
    grid = parse_grid(["wp=-3,0,3", "lm=0,4"])
    report = run_rescore(tiny_config(tiny, tmp_path / "grid", grid=grid, mode="nbest", nbest=30))
    for point, stats in report.grid:
        scales = grid.scales_at(Scales(am=1.0, ngram=0.5, lm=0.7), point)
        alone = run_rescore(tiny_config(tiny, tmp_path / "alone", scales=scales, mode="nbest", nbest=30))
        assert stats == alone.wer_rows[-1][1], point


def test_a_1d_grid_draws_a_line_plot_and_a_2d_grid_a_heat_map(tiny, tmp_path, monkeypatch):
    from rescorer.rescoring import collect

    calls = []
    monkeypatch.setattr(collect, "plot_wer_grid", lambda *args, **kwargs: calls.append(("line", args, kwargs)))
    monkeypatch.setattr(collect, "plot_wer_heat_map", lambda *args: calls.append(("heat", args, {})))
    report = run_rescore(tiny_config(tiny, tmp_path / "one", grid=parse_grid(["wp=3,-3,0"])))
    (kind, (path, values, wers, best), options), = calls
    assert kind == "line" and path == tmp_path / "one" / "wer_grid.png"
    assert values == [-3.0, 0.0, 3.0] and options == {"x_label": "word-penalty"}  # sorted for the line
    assert wers == [dict(report.grid)[(value,)].wer for value in values] and best == report.best_point[0]
    calls.clear()
    report = run_rescore(tiny_config(tiny, tmp_path / "two", grid=parse_grid(["lm=0,1", "wp=3,-3"])))
    (kind, (path, heat), _), = calls
    assert kind == "heat" and (heat.y_name, heat.x_name) == ("lm-scale", "word-penalty")
    assert heat.x_values == [-3.0, 3.0] and heat.wers[1][0] == dict(report.grid)[(1.0, -3.0)].wer
    assert heat.fixed == {}
    calls.clear()
    report = run_rescore(tiny_config(tiny, tmp_path / "three",
                                     grid=parse_grid(["ngram=0.5,1", "lm=0,1,4", "wp=3,0,-3"])))
    (kind, (path, heat), _), = calls
    best = report.best_point
    assert kind == "heat" and (heat.y_name, heat.x_name) == ("lm-scale", "word-penalty")
    assert heat.fixed == {"ngram-scale": best[0]}  # held at the best point's value
    assert heat.wers[heat.best[1]][heat.best[0]] == dict(report.grid)[best].wer
    assert heat.wers[0][2] == dict(report.grid)[(best[0], 0.0, 3.0)].wer
