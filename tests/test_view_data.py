"""The viewer's data assembly: the report's numbers, per-problem rows, clusters, texts by offset, commands."""

from __future__ import annotations

import json
import math
import shlex

import pytest
from helpers.view_runs import make_hostile_run, make_known_run
from typer.testing import CliRunner

from m1eval.analysis.report import compare_runs, summarize_run
from m1eval.cli.app import app
from m1eval.rundir.rundata import load_run, sample_line_index
from m1eval.rundir.store import SAMPLES
from m1eval.rundir.synthetic import make_synthetic_run
from m1eval.view import assemble
from m1eval.view.catalog import Catalog
from m1eval.view.pages import Site
from m1eval.view.texts import INLINE_CHARS, TextsChanged, read_texts, split_completion


@pytest.fixture
def known(tmp_path):
    return make_known_run(tmp_path)


def test_sample_line_index_reads_what_read_samples_reads(tmp_path):
    path = make_synthetic_run(tmp_path, n_problems=5, n_samples=4)
    samples = path / SAMPLES
    lines = samples.read_bytes().split(b"\n")
    # a duplicate of the first sample (first copy wins), an unreadable middle line and a torn tail
    samples.write_bytes(b"\n".join([*lines[:-1], lines[0], b"{not json", b""]) + b'{"problem_id": "x", "samp')
    frame, report = sample_line_index(samples)
    full = load_run(path, with_text=False)
    assert report.truncated_tail and report.bad_lines == [len(lines) + 1]
    assert frame.drop(columns=["line_offset", "line_bytes"]).equals(full.samples)
    data = samples.read_bytes()
    for row in frame.itertuples():  # each offset points at that sample's own line
        line = json.loads(data[row.line_offset : row.line_offset + row.line_bytes])
        assert (line["problem_id"], line["sample_index"]) == (row.problem_id, row.sample_index)


def test_runs_page_numbers_are_the_reports(tmp_path):
    path = make_synthetic_run(tmp_path, n_problems=40, n_samples=8, seed=3)
    catalog = Catalog([tmp_path])
    (slot,) = catalog.slots.values()
    row = assemble.run_row(slot)
    report = summarize_run(load_run(path), metrics=["pass", "maj"])  # loaded with its texts, the report's way
    assert (row.pass1.value, row.pass1.low, row.pass1.high) == (report.pass1, report.pass1_low, report.pass1_high)
    maj = report.curves["maj"]
    assert row.maj_k == 8 and (row.maj.value, row.maj.low, row.maj.high) == (maj.point[-1], maj.low[-1], maj.high[-1])
    assert row.no_answer == report.no_answer_rate and row.truncated == report.truncation_rate
    assert row.grader == "synthetic" and row.marks == []


def test_problem_rows_flags_and_majorities(known):
    loaded = Catalog([known]).loaded(next(iter(Catalog([known]).slots)))
    rows = {r.id: r for r in assemble.problem_rows(loaded)}
    assert rows["q0"].flags == ["selection"] and rows["q0"].majority == "7" and not rows["q0"].majority_right
    assert rows["q0"].pass1 == 0.25 and rows["q0"].pass_n == 1.0 and rows["q0"].maj_n == 0.0
    assert rows["q1"].flags == ["always"] and rows["q1"].majority == "4" and rows["q1"].majority_right
    assert rows["q2"].flags == ["never"] and rows["q2"].clusters == 1 and rows["q2"].majority in ("9", "9.0")
    assert rows["q2"].no_answer == 0.5 and rows["q2"].truncated == 0.25
    assert rows["q3"].flags == ["selection"] and rows["q3"].maj_n == 0.5  # a tie is a coin flip
    assert [r.index for r in rows.values()] == [0, 1, 2, 3]
    assert {c: rows["q0"].meta[c] for c in ("level",)} == {"level": "0"}


def test_problem_page_clusters_and_samples(known):
    catalog = Catalog([known])
    loaded = catalog.loaded(next(iter(catalog.slots)))
    forms = assemble.NormalForms()
    try:
        page = assemble.problem_page(loaded, 2, forms)  # q2: "9" x1 and "9.0" x1 in one class, 2 without answer
        q3 = assemble.problem_page(loaded, 3, forms)
    finally:
        forms.close()
    (cluster,) = page.clusters
    assert cluster.count == 2 and cluster.share == 0.5 and not cluster.correct and cluster.winner
    assert {cluster.answer, *(a for a, _ in cluster.variants)} == {"9", "9.0"}
    assert cluster.normalised in ("9", "9.0")  # the grader's normal form, from its worker
    assert page.no_answer == 2 and page.total == 4 and not page.gold_found and not page.tie
    assert [s.index for s in page.samples] == [0, 1, 2, 3]
    assert page.samples[3].status == "truncated" and page.samples[3].finish_reason == "length"
    assert page.samples[0].rule == "boxed" and page.samples[0].parts[-1].mark == "9"
    assert q3.tie and q3.gold_found and [c.count for c in q3.clusters] == [2, 2]
    assert sum(c.winner for c in q3.clusters) == 1
    assert assemble.problem_page(loaded, 4, None) is None


def test_texts_are_read_for_one_problem_only_and_a_changed_file_is_said(tmp_path):
    path = make_synthetic_run(tmp_path, n_problems=3, n_samples=2)
    run = load_run(path, text_offsets=True)
    rows = run.frame[run.frame["problem_id"] == run.problems[1].id]
    keyed = list(zip(rows["problem_id"], rows["sample_index"], rows["line_offset"], rows["line_bytes"]))
    full = load_run(path)
    expected = {c.sample_index: c.text for c in full.graded_completions() if c.problem_id == run.problems[1].id}
    assert read_texts(path, keyed) == expected
    (path / SAMPLES).write_text((path / SAMPLES).read_text()[5:])  # every line moved
    with pytest.raises(TextsChanged, match="changed while open"):
        read_texts(path, keyed)


def test_split_marks_the_last_occurrence_after_thinking():
    parts = split_completion("<think>maybe 3</think>it is 3, so \\boxed{3}. not 4", "3")
    assert [p.name for p in parts] == ["thinking", "answer"]
    assert parts[0].before == "<think>maybe 3</think>" and parts[0].mark == ""
    assert (parts[1].before, parts[1].mark, parts[1].after) == ("it is 3, so \\boxed{", "3", "}. not 4")
    assert (
        split_completion("no box", "5")[0].mark == "" and not split_completion("x" * (INLINE_CHARS + 1), None)[0].mark
    )
    assert split_completion("x" * (INLINE_CHARS + 1), None)[0].long


def test_pair_page_is_report_compare_runs(tmp_path):
    a, b = make_known_run(tmp_path, "known-a"), make_known_run(tmp_path, "known-b", flip=True)
    catalog = Catalog([tmp_path])
    ka, kb = catalog.pairs()[0]
    page = assemble.pair_page(catalog.loaded(ka), catalog.loaded(kb))
    expected = compare_runs([load_run(a), load_run(b)], baseline=1)
    assert [(c.metric, c.k, c.diff, c.low, c.high, c.p_value) for c in page.comparisons] == [
        (c.metric, c.k, c.diff, c.low, c.high, c.p_value) for c in expected
    ]
    flags = {r.id: r.flags for r in page.rows}
    assert flags == {"q0": ["b-only"], "q1": ["a-only"], "q2": [], "q3": []}
    assert page.k == 4 and page.only_a == page.only_b == 0
    assert math.isclose(next(r for r in page.rows if r.id == "q0").diff_pass1, 0.25 - 1.0)


def test_check_command_reproduces_the_verdict(known, tmp_path):
    """Run each sample's copyable command through the CLI: exit 0 exactly for the samples graded correct."""
    catalog = Catalog([known])
    loaded = catalog.loaded(next(iter(catalog.slots)))
    runner = CliRunner()
    for index in (0, 3):
        page = assemble.problem_page(loaded, index, None)
        for s in page.samples:
            argv = shlex.split(s.check)
            assert argv[:2] == ["m1eval", "check"]
            result = runner.invoke(app, argv[1:])
            assert result.exit_code == (0 if s.correct else 1), (s.check, result.output)


def test_hostile_run_assembles(tmp_path):
    path = make_hostile_run(tmp_path)
    catalog = Catalog([path])
    (slot,) = catalog.slots.values()
    assert slot.error is None and assemble.run_row(slot).model.startswith("<script>")
    page = assemble.problem_page(slot.loaded, 0, None)
    long_sample = page.samples[1]
    assert [p.name for p in long_sample.parts] == ["thinking", "answer"] and all(p.long for p in long_sample.parts)
    assert long_sample.parts[1].mark == "<script>x</script>"
    assert "--mode completion" in page.samples[3].check  # a short completion goes into the command whole


def test_level_sets_the_intervals_shown(tmp_path):
    """--level means what it means in report: the confidence level of every interval on the pages."""
    make_synthetic_run(tmp_path, n_problems=40, n_samples=8, seed=4)
    rows = {}
    for level in (0.8, 0.95):
        catalog = Catalog([tmp_path], level=level)
        rows[level] = assemble.run_row(next(iter(catalog.slots.values())))
        assert f"{100 * level:.3g}% CI" in Site(catalog).render("index.html").body.decode()
    narrow, wide = rows[0.8].pass1, rows[0.95].pass1
    assert narrow.value == wide.value and wide.low < narrow.low and narrow.high < wide.high


def test_marks_say_unpinned_and_incomplete(tmp_path):
    import json as _json

    path = make_synthetic_run(tmp_path, n_problems=6, n_samples=4)
    catalog = Catalog([tmp_path])
    assert assemble.run_row(next(iter(catalog.slots.values()))).marks == []
    manifest = _json.loads((path / "manifest.json").read_text())
    manifest["task"]["unpinned"] = True
    manifest["stages"]["generate"]["state"] = "interrupted"
    (path / "manifest.json").write_text(_json.dumps(manifest))
    row = assemble.run_row(catalog.get(next(iter(catalog.slots))))  # re-read: the manifest changed
    assert row.marks == ["unpinned", "incomplete"] and any("unpinned" in w for w in row.warnings)
