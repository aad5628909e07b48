"""Stages that never hold a run's texts whole (issue 25): the metadata view, streamed grading, one parse per run.

The metadata view (``samples_meta.parquet``) must give exactly what parsing samples.jsonl
gives, be trusted only while the file is unchanged, and follow the append-only file by
parsing just the new lines. Streamed grading must give the grades one ``grade_many`` call
gives, whatever the chunking; sequential scaling the same curve however the texts are
chunked; and one ``m1eval run`` parses samples.jsonl once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from helpers.run_helpers import tiny_model
from typer.testing import CliRunner

import m1eval.rundir.sample_lines as sample_lines
import m1eval.rundir.sample_meta as sample_meta
from m1eval.analysis.budget.sequential import sequential_curve
from m1eval.cli.app import app
from m1eval.engines import ENGINES
from m1eval.engines.base import BatchResult, EngineBase, GenerationRequest
from m1eval.grading import Grader
from m1eval.pipeline.stages import grade_run
from m1eval.records import BatchTiming, Completion, Problem, SamplingConfig
from m1eval.rundir.rundata import load_run
from m1eval.rundir.sample_lines import ScanState, scan_samples
from m1eval.rundir.sample_meta import SAMPLES_META, read_meta
from m1eval.rundir.store import RunStore
from m1eval.rundir.synthetic import make_synthetic_run


@pytest.fixture
def parses(monkeypatch) -> list[int]:
    """Every call of the one parser of samples.jsonl, by the byte it starts at."""
    calls: list[int] = []
    real = sample_lines.scan_samples

    def counted(path, state=None, *, start=0, **kwargs):
        calls.append(start)
        return real(path, state, start=start, **kwargs)

    monkeypatch.setattr(sample_lines, "scan_samples", counted)
    monkeypatch.setattr(sample_meta, "scan_samples", counted)
    return calls


def _without_text(completions: Sequence[Completion]) -> list[dict]:
    return [{k: v for k, v in c.to_dict().items() if k != "text"} for c in completions]


def _meta_records(frame) -> list[dict]:
    return frame.drop(columns=["offset", "length"]).to_dict("records")


def test_meta_view_is_the_parsed_file_and_is_kept(tmp_path, parses):
    path = make_synthetic_run(tmp_path, n_problems=5, n_samples=4, seed=3)
    store = RunStore(path)
    stored, _ = store.read_samples()
    first = read_meta(store)
    assert _meta_records(first.frame) == _without_text(stored)
    assert (path / SAMPLES_META).exists()
    calls = len(parses)
    again = read_meta(store)  # unchanged file: the kept view, nothing parsed
    assert len(parses) == calls
    assert _meta_records(again.frame) == _without_text(stored)
    assert again.frame[["offset", "length"]].equals(first.frame[["offset", "length"]])
    # the byte ranges are the lines: reading them back gives the stored records, texts included
    assert (
        sample_lines.read_lines(path / "samples.jsonl", first.frame["offset"].tolist(), first.frame["length"].tolist())
        == stored
    )


def test_meta_view_follows_appends_and_rebuilds_on_rewrite(tmp_path, parses):
    path = make_synthetic_run(tmp_path, n_problems=3, n_samples=2, seed=4)
    store = RunStore(path)
    read_meta(store)
    size = (path / "samples.jsonl").stat().st_size
    extra = Completion("aime25-0000", 7, 1, "\\boxed{1}", 5, 3, "stop", "bx", {"16": 3}, None, {"score": 0.5})
    with store:
        store.append_samples([extra])
    parses.clear()
    grown = read_meta(store)
    assert parses == [size]  # only the appended line is parsed
    assert _meta_records(grown.frame)[-1] == _without_text([extra])[0] and len(grown.frame) == 7
    # a rewrite that keeps nothing of the old bytes is noticed (the covered bytes' hash) and rebuilt whole
    rows = (path / "samples.jsonl").read_text().splitlines()
    (path / "samples.jsonl").write_text("\n".join(reversed(rows)) + "\n")
    parses.clear()
    rebuilt = read_meta(store)
    assert parses == [0]
    assert _meta_records(rebuilt.frame) == _without_text(store.read_samples()[0])


def test_meta_view_reports_torn_tail_and_bad_lines_as_the_store_does(tmp_path):
    path = make_synthetic_run(tmp_path, n_problems=2, n_samples=2, seed=5)
    samples = path / "samples.jsonl"
    lines = samples.read_text().splitlines()
    samples.write_text(lines[0] + "\n{not json\n" + "\n".join(lines[1:]) + "\n" + lines[0][:40])
    store = RunStore(path)
    expected = store.read_samples()[1]
    for _ in range(2):  # built, then kept: the same report
        report = read_meta(store).report
        assert (report.rows, report.truncated_tail, report.bad_lines) == (expected.rows, True, [2])
        assert report.summary() == expected.summary()
    with store:  # the writer cuts the torn line: its repair is reported, the view extended
        pass
    assert read_meta(store).report.rows == 4


def test_meta_view_without_write_access_is_built_in_memory(tmp_path, monkeypatch):
    path = make_synthetic_run(tmp_path, n_problems=2, n_samples=2, seed=6)

    def refuse(*args, **kwargs):
        raise PermissionError("read-only folder")

    import pyarrow.parquet

    monkeypatch.setattr(pyarrow.parquet, "write_table", refuse)
    meta = read_meta(RunStore(path))
    assert len(meta.frame) == 4 and not (path / SAMPLES_META).exists()
    assert not list(path.glob("*.tmp"))


def test_scan_chunks_are_bounded_and_whole_lines(tmp_path):
    path = make_synthetic_run(tmp_path, n_problems=4, n_samples=8, seed=7, text_chars=3000)
    state = ScanState()
    chunks = list(scan_samples(path / "samples.jsonl", state, chunk_bytes=10_000))
    longest = max(len(line) for line in (path / "samples.jsonl").read_bytes().splitlines(keepends=True))
    assert len(chunks) > 1 and all(sum(s.length for s in chunk) < 10_000 + longest for chunk in chunks)
    assert sum(len(chunk) for chunk in chunks) == 32 and state.covered == (path / "samples.jsonl").stat().st_size


@pytest.mark.parametrize("max_bytes", [1, 9_000, 40_000, 1 << 30])
def test_graded_chunks_are_whole_problems_in_file_order(tmp_path, max_bytes):
    """As a resumed run leaves samples.jsonl (one problem's samples in several places), each chunk is
    whole problems, in the order they first appear, each problem's samples in file order; a chunk
    closes at the problem that brings it to ``max_bytes`` of lines."""
    path = make_synthetic_run(tmp_path, n_problems=6, n_samples=5, seed=3, text_chars=2000)
    lines = (path / "samples.jsonl").read_bytes().splitlines(keepends=True)
    random.Random(1).shuffle(lines)
    (path / "samples.jsonl").write_bytes(b"".join(lines))
    (path / SAMPLES_META).unlink(missing_ok=True)
    run = load_run(path)
    in_file = [(c["problem_id"], c["sample_index"], len(line)) for c, line in ((json.loads(x), x) for x in lines)]
    problems = list(dict.fromkeys(pid for pid, _, _ in in_file))
    want, chunk, held = [], [], 0
    for pid in problems:
        mine = [(p, i, size) for p, i, size in in_file if p == pid]
        chunk += [(p, i) for p, i, _ in mine]
        held += sum(size for _, _, size in mine)
        if held >= max_bytes:
            want, chunk, held = [*want, chunk], [], 0
    want += [chunk] if chunk else []
    got = [[(c.problem_id, c.sample_index) for c in completions] for completions in run.graded_chunks(max_bytes)]
    assert got == want and run.graded_chunk_count(max_bytes) == len(want)
    exact = sum(size for pid, _, size in in_file if pid == problems[0])  # the first problem reaches it exactly
    assert {c.problem_id for c in next(run.graded_chunks(exact))} == {problems[0]}


def _answers() -> tuple[list[Problem], list[Completion]]:
    """Problems whose samples give several classes each (and no answer, and truncation), shuffled as a
    resumed run leaves them: one problem's samples in several places of the file."""
    rng = random.Random(0)
    problems = [Problem("t", f"p{i}", "q", [str(i + 10)], "integer") for i in range(6)]
    pool = ["{gold}", "{wrong}", "{other}", "\\frac{{{twice}}}{{2}}", None]
    completions = []
    for i, problem in enumerate(problems):
        for j in range(10):
            choice = rng.choice(pool)
            text = (
                "no answer"
                if choice is None
                else "\\boxed{" + choice.format(gold=i + 10, wrong=i + 11, other=i + 12, twice=2 * (i + 11)) + "}"
            )
            completions.append(Completion(problem.id, j, j, text, 3, 5, "length" if j == 9 else "stop", "b"))
    rng.shuffle(completions)
    return problems, completions


def test_grade_stream_gives_the_grades_of_one_call():
    problems, completions = _answers()
    with Grader(workers=1) as grader:
        by_problem = {p.id: [c for c in completions if c.problem_id == p.id] for p in problems}
        whole = grader.grade_many([(p, by_problem[p.id]) for p in problems])
    assert len({g.cluster for g in whole if g.problem_id == "p0"}) >= 3  # the premise: several classes
    for size in (1, 7, 25):
        chunks = [completions[i : i + size] for i in range(0, len(completions), size)]
        with Grader(workers=1) as grader:  # a fresh grader: nothing memoised from the whole call
            assert grader.grade_stream(problems, iter(chunks)) == whole


def test_grade_run_streams_and_keeps_the_view(tmp_path, parses):
    path = make_synthetic_run(tmp_path, n_problems=4, n_samples=4, seed=8, graded=False)
    frame = grade_run(path, workers=1)
    assert parses == [0] and len(frame) == 16
    assert (path / SAMPLES_META).exists()
    parses.clear()
    run = load_run(path)  # the view grading kept: nothing parsed again
    assert parses == [] and len(run.frame) == 16


def test_sequential_curve_does_not_depend_on_the_text_chunks(tmp_path):
    path = make_synthetic_run(tmp_path, n_problems=6, n_samples=4, seed=9, max_tokens=2048, tokens_per_sample=1500)
    run = load_run(path)
    with Grader(workers=1) as grader:
        whole = sequential_curve(run, grader=grader, sign_flips=100)
        steps: list[tuple[int, int]] = []
        chunked = sequential_curve(
            run, grader=grader, sign_flips=100, chunk_bytes=1, on_step=lambda done, total: steps.append((done, total))
        )
    assert len(whole.lengths) > 2 and chunked.lengths == whole.lengths
    for name in ("accuracy", "low", "high", "no_answer"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name)), name
    assert steps[0][0] == 0 and steps[-1][0] == steps[-1][1] == 6  # one chunk per problem, every length at once


class Echo(EngineBase):
    """Answers every request at once, as a fake engine may (the parse count is the runner's, not the engine's)."""

    name = "echo-test"

    def __init__(self, model: str, *, options: dict | None = None) -> None:
        self.model = model

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> Iterator[BatchResult]:
        completions = [
            Completion(r.problem_id, i, s, f"so \\boxed{{{i % 3}}}", 5, 4, "stop", "b1", {"4": 7})
            for r in requests
            for i, s in zip(r.sample_indices, r.seeds)
        ]
        yield BatchResult(completions, BatchTiming("b1", self.name, len(completions), 0.1, 4 * len(completions)))

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


def test_one_run_parses_samples_once(model, data_dir, tmp_path, monkeypatch, parses):
    monkeypatch.setitem(ENGINES, "echo-test", f"{__name__}:Echo")
    args = [
        "run",
        "-m",
        str(model),
        "--engine",
        "echo-test",
        "--task",
        "aime25",
        "--limit",
        "3",
        "--max-tokens",
        "16",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
    ]
    first = CliRunner().invoke(app, [*args, "--k", "2"])
    assert first.exit_code == 0, first.output
    assert parses == [0], "a fresh run: grading's one parse"
    parses.clear()
    grown = CliRunner().invoke(app, [*args, "--k", "4"])  # resume: finished keys from the kept view
    assert grown.exit_code == 0, grown.output
    assert parses == [0], "a resumed run: grading's one parse, none for the finished keys or the summary"
    rows = [json.loads(line) for line in next(tmp_path.rglob("samples.jsonl")).read_text().splitlines()]
    assert len(rows) == 12 and "pass@1" in grown.output


def test_torn_tail_check_reads_backwards_to_the_last_line(tmp_path):
    """The writer's torn-tail check reads the file from its end (a lock on a large run costs its last line);
    whatever the block size, it finds the line the whole-file rule finds."""
    from m1eval.rundir.store import _last_line

    rng = random.Random(1)
    path = tmp_path / "lines"
    for _ in range(300):
        data = bytes(rng.choice(b"ab\n") for _ in range(rng.randint(0, 200)))
        path.write_bytes(data)
        cut = data.rfind(b"\n") + 1
        expected = (None, b"") if not data or data.endswith(b"\n") else (cut, data[cut:])
        assert _last_line(path, block=rng.randint(1, 40)) == expected, data
