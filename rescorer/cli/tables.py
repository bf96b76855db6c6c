"""Rich tables of a rescoring run (``rescore`` and ``merge``): summary, failures, WER, grid.

In cli/ because it renders ``rescorer.rescoring.report`` for the terminal:
``outputs/`` never imports ``rescoring/``.
"""
from typing import List

import typer
from rich.table import Table
from rich.text import Text

from rescorer.cli.common import err_console
from rescorer.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL
from rescorer.outputs.wer import WerStats

from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.timing import STAGES

TOP_ROWS = 10  # grid points listed for a grid of more than two parameters


def summary_table(report: RescoreReport) -> Table:
    """Utterances, lattice sizes along the pipeline, histories and timings."""
    totals = report.totals()
    table = Table(title="Rescoring summary", show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    ok, failed = len(report.results), len(report.failures)
    table.add_row("utterances rescored / failed", f"{ok} / {failed}")
    table.add_row("arcs read", f"{totals['arcs']:,}")
    table.add_row("arcs after pruning", f"{totals['pruned_arcs']:,}")
    if totals["expanded_arcs"]:
        table.add_row("arcs after expansion", f"{totals['expanded_arcs']:,}")
        factor = totals["expanded_arcs"] / max(totals["pruned_arcs"], 1)
        table.add_row("expansion factor (expanded / pruned arcs)", f"{factor:.2f}")
    table.add_row("LM histories (per utterance, summed)", f"{totals['histories']:,}")
    table.add_row("LM histories run (deduplicated per batch)", f"{report.unique_histories:,}")
    table.add_row("LM queries", f"{totals['queries']:,}")
    tightened = sum(1 for stats in report.results.values() if stats.tightened)
    table.add_row("utterances whose beam was tightened", f"{tightened}")
    table.add_row("LM OOV rate (lattice words, run)",
                  f"{100 * report.oov_rate:.2f}% ({totals['oov_words']:,} / {totals['words']:,})")
    if report.results:
        worst = max(report.results, key=lambda utt: (report.results[utt].oov_rate, utt))
        table.add_row("LM OOV rate, highest utterance",
                      f"{100 * report.results[worst].oov_rate:.2f}% ({worst})")
    timings = report.timings
    table.add_row(
        "time: " + " / ".join(STAGES) + " / total (s)",
        " / ".join("-" if timings.get(name) is None else f"{timings.get(name):.2f}" for name in STAGES)
        + f" / {timings.total:.2f}",
    )
    if ok and timings.total > 0:
        table.add_row("lattices per second", f"{ok / timings.total:.1f}")
    for note in report.notes:
        table.add_row("note", note)
    return table


def failures_table(report: RescoreReport) -> Table:
    """One row per skipped utterance or file."""
    table = Table(title=f"Failed utterances ({len(report.failures)})", header_style="bold red")
    table.add_column("file", overflow="fold")
    table.add_column("utterance")
    table.add_column("problem", overflow="fold")
    for failure in report.failures:
        table.add_row(str(failure.path or "-"), failure.utt_id or "(whole file)", failure.problem or failure.message)
    return table


def wer_table(report: RescoreReport) -> Table:
    """First pass, oracle and rescored WER."""
    table = Table(title="WER", header_style="bold")
    for name in ("system", "WER %", "errors", "ins", "del", "sub", "ref words", "utts"):
        table.add_column(name, justify="left" if name == "system" else "right")
    for label, stats in report.wer_rows:
        detail = ("-", "-", "-") if "oracle" in label else (
            str(stats.insertions), str(stats.deletions), str(stats.substitutions))
        table.add_row(label, f"{stats.wer:.2f}", str(stats.errors), *detail,
                      str(stats.ref_words), str(stats.utterances))
    return table


def grid_table(report: RescoreReport) -> Table:
    """WER over the ``--grid`` points, the best one named in the caption.

    1-D: one row per value. 2-D: a matrix, rows the first parameter's values and columns
    the second's. More: the ``TOP_ROWS`` best points (fewest errors first).
    """
    names, best = report.grid_names, report.best_point
    stats = dict(report.grid)
    chosen = stats[best]
    title = f"Grid sweep (--grid, {len(report.grid)} points)"
    if len(names) > 2 and len(report.grid) > TOP_ROWS:
        title = f"Grid sweep (--grid, the best {TOP_ROWS} of {len(report.grid)} points)"
    caption = (f"best: {' '.join(f'{n}={v:g}' for n, v in zip(names, best))}, WER {chosen.wer:.2f}% "
               f"({chosen.errors} errors; ties: the smallest values, in --grid order)")
    table = Table(title=title, caption=caption, header_style="bold")
    if len(names) == 2:
        columns = list(dict.fromkeys(point[1] for point, _ in report.grid))
        table.add_column(f"{names[0]} \\ {names[1]}", justify="right")
        for value in columns:
            table.add_column(f"{value:g}", justify="right")
        for row in dict.fromkeys(point[0] for point, _ in report.grid):
            table.add_row(f"{row:g}", *(_cell(stats[(row, column)], (row, column) == best)
                                        for column in columns))
        return table
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("WER %", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("")
    rows = report.grid if len(names) == 1 else \
        sorted(report.grid, key=lambda row: (row[1].errors, row[0]))[:TOP_ROWS]
    for point, point_stats in rows:
        table.add_row(*(f"{value:g}" for value in point), f"{point_stats.wer:.2f}",
                      str(point_stats.errors), "best" if point == best else "")
    return table


def _cell(stats: WerStats, best: bool) -> Text:
    """A matrix cell: the WER, bold with a star at the best point."""
    return Text(f"{stats.wer:.2f}*", style="bold") if best else Text(f"{stats.wer:.2f}")


def report_tables(report: RescoreReport) -> List[Table]:
    """Every table that applies to ``report``, in display order."""
    tables = [summary_table(report)]
    if report.failures:
        tables.append(failures_table(report))
    if report.grid:
        tables.append(grid_table(report))
    if report.wer_rows:
        tables.append(wer_table(report))
    return tables


def show_report(report: RescoreReport) -> None:
    """Print the tables, warnings and written files on stderr, then exit with the run's code.

    Exit codes: 0 no failure, 3 some utterances failed, 1 failures and nothing rescored.
    """
    for table in report_tables(report):
        err_console.print(table)
    for warning in report.warnings:
        err_console.print(Text.assemble(("warning: ", "bold yellow"), warning), soft_wrap=True)
    for output in report.outputs:
        err_console.print(f"wrote {output}")
    if report.failures and not report.results:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_PARTIAL if report.failures else EXIT_OK)
