"""The generation loop of ``m1eval run``: plan what is missing, generate it chunk by chunk, store it.

Resume is a set difference: the run folder's ``samples.jsonl`` says which (problem,
sample) pairs exist, and only the rest is requested, each with the seed
``sample_seed(run seed, problem, index)``. So re-running a killed run, or asking for a
larger k, draws exactly the missing samples with the same seeds they would have had.
Each chunk of problems is one engine call; every batch the engine yields is appended
(fsynced) the moment it arrives, which bounds the work a crash can lose to one batch
(engines yield finished samples every few seconds, see ``FLUSH_SECONDS``).

A resume must add to the *same* experiment: the stored problems (ids, questions, golds)
and rendered prompts are compared with the new ones before anything is written, and a
difference stops the run with the differing problem ids. Planning is lazy (requests are
made chunk by chunk), and ``--k`` is capped at ``MAX_K``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from m1eval.engines import ENGINES, engine_class, identity_options, public_options, validate_options
from m1eval.engines.base import Engine, EngineError, EngineOutOfMemory, GenerationRequest
from m1eval.engines.replies import overlong, overlong_record
from m1eval.models.presets import DEFAULT_JOIN, DEFAULT_TOP_K, ResolvedModel, eos_setting, resolve_model
from m1eval.models.prompts import JOINS, load_tokenizer, render, template_hash
from m1eval.pipeline.seeding import sample_seed
from m1eval.records import Completion, Problem, SamplingConfig
from m1eval.rundir.golds import PROBLEM_HASHES, problem_hashes
from m1eval.rundir.runinfo import config_hash, host, versions
from m1eval.rundir.store import (
    FORMAT_VERSION,
    MANIFEST,
    PROBLEMS,
    RUN_STAGE,
    RunStore,
    StoreError,
    normal_run_id,
    run_folder_name,
    run_path,
)
from m1eval.tasks import loader as task_lib

DEFAULT_CHUNK_SAMPLES = 512
# The most samples per problem one run may ask for. The largest repeated-sampling studies
# draw 10^4 samples per problem (Brown et al. 2024, "Large Language Monkeys"); 10^5 is ten
# times that, and already 10^5 stored lines (>= 0.3 GB at a few kB each) for one problem.
# Beyond it a typo (--k 1000000000) is far likelier than an experiment.
MAX_K = 100_000


class RunError(Exception):
    """The run cannot go on; the message says why and what was kept."""


@dataclass
class RunConfig:
    """Everything ``m1eval run`` was asked; None means "the preset's default"."""

    model: str
    task: str
    k: int
    engine: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int = DEFAULT_TOP_K
    max_tokens: int | None = None
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    suffix: str | None = None
    join: str | None = None  # how question and instruction join (m1eval.models.prompts.JOINS); None: the preset's
    limit: int | None = None
    data_dir: Path | None = None
    out: Path = Path("results")
    run_id: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    chunk_size: int | None = None  # samples per engine call
    allow_unpinned: bool = False
    replicas: Any = None  # m1eval.engines.replicas.ReplicaSettings: run the engine as Ray actors
    # Let a resume add problems to a run whose stored problems are all unchanged (a library caller
    # growing a chosen subset under a fixed run id); the CLI never sets it (--limit is in the run id).
    extend_problems: bool = False


@dataclass
class RunPlan:
    """A resolved run: what to draw (``k`` samples of each problem), how, and where it is stored."""

    config: RunConfig
    model: ResolvedModel
    problems: list[Problem]
    sampling: SamplingConfig
    suffix: str
    run_id: str
    path: Path
    engine_options: dict[str, Any]
    task_rows: int = 0
    task_source: task_lib.LoadedTask | None = None  # provenance of the rows: hash as read, pinned, folder
    join: str = DEFAULT_JOIN
    protocol_source: str = "m1eval default"

    @property
    def k(self) -> int:
        """Samples per problem this command aims at (the run id leaves it out, so a run can grow)."""
        return self.config.k


@dataclass
class RunOutcome:
    path: Path
    state: str  # "done" | "interrupted" | "failed"
    generated: int
    stored: int
    expected: int
    message: str = ""


# ---------------------------------------------------------------------------- planning


def derive_run_id(plan_fields: dict[str, Any]) -> str:
    """A readable id from the settings that change the samples; k is left out so runs can grow."""
    s = plan_fields["sampling"]
    digest = config_hash(plan_fields)
    return (
        f"{plan_fields['engine']}-t{s['temperature']:g}-p{s['top_p']:g}-max{s['max_tokens']}-seed{s['seed']}-{digest}"
    )


def identity(
    model: ResolvedModel,
    task: str,
    limit: int | None,
    sampling: SamplingConfig,
    suffix: str,
    engine_options: dict[str, Any],
    join: str = DEFAULT_JOIN,
) -> dict[str, Any]:
    """The settings a resumed run must share with the stored one.

    ``join`` enters only when it is not the original newline, so runs made before joins
    were selectable keep their ids and stay resumable.
    """
    sampling_dict = sampling.to_dict()
    extra = {} if join == "newline" else {"join": join}  # the join of every run before joins existed
    return {
        "task": task,
        "limit": limit,
        "model": model.identity_source or model.path,
        "engine": model.engine,
        "sampling": sampling_dict,
        "suffix": suffix,
        # what the engine declares as changing the samples (memory shares, parallelism and
        # endpoints change only speed and stay out, so a run resumes with other resources)
        "options": identity_options(model.engine, engine_options),
        **extra,
    }


def plan_run(config: RunConfig) -> RunPlan:
    """Resolve model, engine and task without loading anything heavy (bad input fails here, fast)."""
    if config.k < 1:
        raise RunError(f"k (samples per problem) must be at least 1, got {config.k}")
    if config.k > MAX_K:
        raise RunError(
            f"k = {config.k:,} is above the limit of {MAX_K:,} samples per problem "
            f"(the largest published studies draw 10,000); split it into several runs with other seeds"
        )
    model = resolve_model(config.model, config.engine)
    if model.engine not in ENGINES:
        raise EngineError(f"unknown engine {model.engine!r}; choose one of {', '.join(sorted(ENGINES))}")
    loaded = task_lib.read_task(config.task, config.data_dir, allow_unpinned=config.allow_unpinned)
    all_problems = loaded.problems
    problems = task_lib.select_subset(all_problems, config.limit)
    protocol = model.protocol(config.task)
    join = protocol.join if config.join is None else config.join
    if join not in JOINS:
        raise RunError(f"join must be one of {', '.join(JOINS)}, got {join!r}")
    sampling = SamplingConfig(
        temperature=model.temperature if config.temperature is None else config.temperature,
        top_p=model.top_p if config.top_p is None else config.top_p,
        top_k=config.top_k,
        max_tokens=protocol.max_tokens if config.max_tokens is None else config.max_tokens,
        seed=config.seed,
        stop=list(config.stop),
    )
    suffix = model.suffix if config.suffix is None else config.suffix
    options = {**model.engine_options, **config.engine_options}
    # Names and types of engine options are checked here, before any folder is created or touched.
    options = validate_options(model.engine, options)
    ident = identity(model, config.task, config.limit, sampling, suffix, options, join)
    run_id = normal_run_id(config.run_id) if config.run_id else derive_run_id(ident)
    try:
        path = run_path(config.out, config.task, model.name, run_id)
    except StoreError as exc:  # an id that names no folder
        raise RunError(str(exc)) from None
    return RunPlan(
        config,
        model,
        problems,
        sampling,
        suffix,
        run_id,
        path,
        options,
        len(all_problems),
        loaded,
        join=join,
        protocol_source=protocol.source if config.join is None else "--join",
    )


def iter_pending(
    problems: Sequence[Problem],
    prompts: dict[str, tuple[str, list[int]]],
    finished: set[tuple[str, int]],
    k: int,
    run_seed: int,
    max_samples: int | None = None,
) -> Iterator[GenerationRequest]:
    """Requests for the missing sample indices below k with their seeds, made lazily.

    With ``max_samples`` a problem missing more samples than that is split into several
    requests, so memory stays bounded by one chunk whatever k is.
    """
    piece = max_samples if max_samples and max_samples > 0 else None
    for problem in problems:
        text, ids = prompts[problem.id]
        missing: list[int] = []
        for i in range(k):
            if (problem.id, i) in finished:
                continue
            missing.append(i)
            if piece is not None and len(missing) == piece:
                yield _request(problem.id, text, ids, missing, run_seed)
                missing = []
        if missing:
            yield _request(problem.id, text, ids, missing, run_seed)


def _request(problem_id: str, text: str, ids: list[int], missing: list[int], run_seed: int) -> GenerationRequest:
    return GenerationRequest(
        problem_id=problem_id,
        prompt=text,
        sample_indices=missing,
        seeds=[sample_seed(run_seed, problem_id, i) for i in missing],
        prompt_token_ids=ids,
    )


def pending_requests(
    problems: Sequence[Problem],
    prompts: dict[str, tuple[str, list[int]]],
    finished: set[tuple[str, int]],
    k: int,
    run_seed: int,
) -> list[GenerationRequest]:
    """One request per problem with its missing sample indices below k and their seeds."""
    return list(iter_pending(problems, prompts, finished, k, run_seed))


def stored_count(problems: Sequence[Problem], finished: set[tuple[str, int]], k: int) -> int:
    """How many of the k x problems pairs of the plan are stored (without enumerating k)."""
    ids = {p.id for p in problems}
    return sum(1 for pid, i in finished if pid in ids and 0 <= i < k)


def complete_k(problems: Sequence[Problem], finished: set[tuple[str, int]]) -> int:
    """The largest k for which every problem has samples 0..k-1 stored."""
    if not problems:
        return 0
    by_problem: dict[str, set[int]] = {p.id: set() for p in problems}
    for pid, i in finished:
        if pid in by_problem:
            by_problem[pid].add(i)
    best = None
    for indices in by_problem.values():
        n = 0
        while n in indices:
            n += 1
        best = n if best is None else min(best, n)
    return best or 0


def prompt_hash(text: str, ids: Sequence[int]) -> str:
    """A short hash of one rendered prompt (text and token ids), stored per problem in the manifest."""
    blob = text.encode("utf-8") + b"\x00" + ",".join(map(str, ids)).encode("ascii")
    return hashlib.sha256(blob).hexdigest()[:16]


# ---------------------------------------------------------------------------- manifest


def _check_compatible(store: RunStore, plan: RunPlan) -> dict[str, Any]:
    if not store.has(MANIFEST):
        return {}
    old = store.read_manifest()
    stored_id = old.get("run_id")
    if isinstance(stored_id, str) and normal_run_id(stored_id) != plan.run_id:
        # two ids with one folder name ('a b' and 'a--b', or an id reduced by an older m1eval)
        raise RunError(
            f"run folder {store.path} holds run {stored_id!r}, and run id {plan.run_id!r} has the same folder "
            f"name ({run_folder_name(plan.run_id)!r}); choose a run id that differs in its letters or digits, "
            "or another results folder, so the two runs stay apart"
        )
    stored = old.get("identity")
    new = identity(
        plan.model, plan.config.task, plan.config.limit, plan.sampling, plan.suffix, plan.engine_options, plan.join
    )
    if stored is not None and stored != new:
        diffs = [
            f"{key}: stored {stored.get(key)!r}, now {new.get(key)!r}" for key in new if stored.get(key) != new.get(key)
        ]
        raise RunError(
            f"run folder {store.path} holds a run with other settings ({'; '.join(diffs)}); "
            "use another run id or output folder to start a separate run"
        )
    return old


def _problem_differences(
    store: RunStore,
    plan: RunPlan,
    old: dict[str, Any],
    prompts: dict[str, tuple[str, list[int]]],
    template: str,
    finished: set[tuple[str, int]],
) -> None:
    """Stop a resume whose problems or rendered prompts differ from those its samples were drawn for.

    Nothing is compared when no sample is stored yet (nothing could be mixed). The stored
    prompts are known by one hash per problem (``prompt.hashes``); a run stored before
    those hashes existed is compared by its chat-template hash.
    """
    if not old or not finished or not store.has(PROBLEMS):
        return
    try:
        stored = {p.id: p for p in store.read_problems()}
    except (StoreError, TypeError, ValueError) as exc:
        raise RunError(
            f"run folder {store.path}: cannot compare its stored problems ({exc}); "
            "use another run id or output folder to start a separate run"
        ) from exc
    new = {p.id: p for p in plan.problems}
    stored_prompt = old.get("prompt") or {}
    hashes = stored_prompt.get("hashes") or {}
    template_changed = not hashes and stored_prompt.get("template_hash") not in (None, template)
    reasons: dict[str, str] = {}
    for pid in [*stored, *(p for p in new if p not in stored)]:
        before, now = stored.get(pid), new.get(pid)
        if before is None:
            if not plan.config.extend_problems:
                reasons[pid] = "new problem"
        elif now is None:
            reasons[pid] = "no longer in the task"
        else:
            fields = [
                f for f in ("question", "answers", "answer_format", "meta") if getattr(before, f) != getattr(now, f)
            ]
            if fields:
                reasons[pid] = " and ".join(fields) + " changed"
            elif pid in hashes and hashes[pid] != prompt_hash(*prompts[pid]):
                reasons[pid] = "rendered prompt changed"
            elif template_changed:
                reasons[pid] = "chat template changed"
    if reasons:
        listed = "; ".join(f"{pid} ({why})" for pid, why in list(reasons.items())[:20])
        more = f" and {len(reasons) - 20} more" if len(reasons) > 20 else ""
        raise RunError(
            f"run folder {store.path} holds samples of other problems or prompts than this command would draw: "
            f"{len(reasons)} problem(s) differ: {listed}{more}. Resuming would mix two data sets in one run; "
            "use another run id or output folder (or the data the run was started with)"
        )


def _task_record(plan: RunPlan) -> dict[str, Any]:
    """What the manifest says about the rows: the hash of the rows actually read (not the pin's),
    whether they matched the pin, and the folder or hub source they came from."""
    loaded = plan.task_source
    spec = loaded.spec if loaded else task_lib.load_spec(plan.config.task)
    folder = loaded.data_dir if loaded else plan.config.data_dir
    return {
        "name": plan.config.task,
        "rows": plan.task_rows,
        "problems": len(plan.problems),
        "content_hash": loaded.content_hash if loaded else spec.content_hash,
        "pinned_hash": spec.content_hash,
        "unpinned": bool(loaded and not loaded.pinned),
        "subset_hash": task_lib.content_hash(plan.problems),
        # one hash per problem, so a later edit of problems.jsonl is found and named (m1eval.rundir.golds)
        PROBLEM_HASHES: problem_hashes(plan.problems),
        "limit": plan.config.limit,
        "data_dir": str(Path(folder).resolve()) if folder else None,
        "source": loaded.source if loaded else None,
    }


def prompt_protocol(plan: RunPlan, template: str) -> dict[str, Any]:
    """The exact prompt protocol of a run, as the manifest records it."""
    return {
        "suffix": plan.suffix,
        "join": plan.join,
        "user_message": JOINS[plan.join],
        "chat_template": True,
        "template_hash": template,
        "max_tokens": plan.sampling.max_tokens,
        "eos": eos_setting(plan.engine_options),
        "source": plan.protocol_source,
    }


def _manifest(
    plan: RunPlan,
    old: dict[str, Any],
    template: str,
    prompts: dict[str, tuple[str, list[int]]],
    finished: set[tuple[str, int]],
) -> dict[str, Any]:
    options_shown = public_options(plan.model.engine, plan.engine_options)
    # n is what the run holds or aims at now: a smaller --k after an unfinished larger one
    # must not leave the larger n behind, a smaller --k after a finished larger one keeps it.
    n = max(plan.k, complete_k(plan.problems, finished))
    return {
        "format_version": FORMAT_VERSION,
        "run_id": plan.run_id,
        "task": _task_record(plan),
        "model": {
            "name": plan.model.name,
            "path": plan.model.path,
            "preset": plan.model.preset,
            "revision": plan.engine_options.get("revision"),
        },
        "engine": {"name": plan.model.engine, "options": options_shown},
        "sampling": {**plan.sampling.to_dict(), "n": n},
        "seeding": "one request per (problem, sample) with seed sample_seed(run seed, problem id, sample index)",
        "prompt": {
            **prompt_protocol(plan, template),
            "hashes": {pid: prompt_hash(*prompts[pid]) for pid in sorted(prompts)},
        },
        "identity": identity(
            plan.model, plan.config.task, plan.config.limit, plan.sampling, plan.suffix, plan.engine_options, plan.join
        ),
        "versions": versions(),
        "host": host(plan.model.engine, list(options_shown.get("endpoints") or [])),
        # the run's clock (started_at, resumed_at, finished_at) is kept by RunStore.begin/end
        **{key: old[key] for key in ("started_at", "resumed_at", "finished_at") if key in old},
        "stages": old.get("stages", {}),
        **({"repairs": old["repairs"]} if old.get("repairs") else {}),
        **{key: old[key] for key in (OVERLONG, OVERLONG_TOTAL) if old.get(key)},
    }


# ---------------------------------------------------------------------------- generation


def _tokenizer_source(plan: RunPlan) -> str:
    return str(plan.engine_options.get("tokenizer") or plan.model.path)


class RunObserver(Protocol):
    """What ``generate`` tells whoever shows the run. A protocol, so the drawer
    (``m1eval.cli.progress.RunProgress``, ``m1eval run``) matches it by shape without importing
    the runner; ``SilentObserver`` is the library default that shows nothing."""

    def planned(self, path: Path, stored: int, expected: int) -> None:
        """The run folder is ready: ``stored`` of ``expected`` samples are there, the rest is next."""

    def status(self, text: str | None) -> None:
        """A passing state while the engine starts (None: it is over)."""

    def started(self, expected: int, stored: int) -> None:
        """The engine is up and generation begins."""

    def progress(self, completions: int, tokens: int) -> None:
        """The engine finished ``completions`` more samples (not stored yet) with ``tokens`` tokens."""

    def stored(self, generated: int, tokens: int) -> None:
        """This command has now stored ``generated`` samples holding ``tokens`` generated tokens."""

    def waiting(self, in_flight: int, oldest_seconds: float) -> None:
        """Requests sent and not answered, and how long the oldest has waited."""

    def notice(self, message: str) -> None:
        """One line worth telling the user (a retry, a lost replica)."""

    def finished(self) -> None:
        """Generation stopped (done, interrupted or failed)."""


class SilentObserver(RunObserver):
    """The observer a library caller gets by default: hears everything, prints nothing."""

    def planned(self, path: Path, stored: int, expected: int) -> None:
        pass

    def status(self, text: str | None) -> None:
        pass

    def started(self, expected: int, stored: int) -> None:
        pass

    def progress(self, completions: int, tokens: int) -> None:
        pass

    def stored(self, generated: int, tokens: int) -> None:
        pass

    def waiting(self, in_flight: int, oldest_seconds: float) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def finished(self) -> None:
        pass


def _prepare(
    store: RunStore, plan: RunPlan, prompts: dict[str, tuple[str, list[int]]], template: str, existed: bool
) -> tuple[dict[str, Any], Any, set[tuple[str, int]]]:
    """What the folder holds, checked against the plan: (old manifest, metadata view, stored keys).

    Raises ``RunError`` when the folder holds another run (``_check_compatible``,
    ``_problem_differences``); writes nothing (the metadata view is kept only later).
    """
    old = _check_compatible(store, plan)
    from m1eval.rundir.sample_meta import read_meta  # pandas: only when there is a folder to read

    meta = read_meta(store, keep=False) if existed else None
    finished = meta.keys() if meta is not None else set()
    _problem_differences(store, plan, old, prompts, template, finished)
    return old, meta, finished


def generate(plan: RunPlan, *, engine: Engine | None = None, observer: RunObserver | None = None) -> RunOutcome:
    """Generate every missing sample of ``plan`` into its run folder; never loses a stored sample.

    ``engine`` lets a caller reuse an engine it already built (benchmarks); otherwise one
    is constructed from the plan and closed at the end. ``observer`` hears the progress
    (``RunObserver``); nothing is printed here.

    One writer per folder, from the first read to the last write: the folder's lock
    (``RunStore.lock``) is taken before anything in an existing folder is read, or, for a new
    folder, when it is made, and is held while the engine loads and generates, so a second
    ``run`` of the same folder stops at once with the holder's name. If another writer made
    the folder between the first look and the lock, the pending samples are planned again
    under the lock, so no sample is drawn or stored twice. The lock is a POSIX record lock,
    which the engine's forked workers do not inherit: a killed run never leaves it held.
    """
    observer = observer or SilentObserver()
    store = RunStore(plan.path)
    existed = store.has(MANIFEST)
    k = plan.k
    expected = k * len(plan.problems)
    try:
        # Everything that can refuse the command runs before a new folder is made, and
        # before an existing one is written to.
        if existed:
            store.lock()
        # A caller-provided engine already holds the model's tokenizer; otherwise load it
        # (before the engine, so a bad prompt setup fails before a slow model load).
        tokenizer = engine.tokenizer if engine is not None else None
        if tokenizer is None:
            tokenizer = load_tokenizer(_tokenizer_source(plan), plan.engine_options.get("revision"))
        prompts = {p.id: render(tokenizer, p.question, plan.suffix, plan.join) for p in plan.problems}
        template = template_hash(tokenizer)
        old, meta, finished = _prepare(store, plan, prompts, template, existed)
        if not existed:
            store.lock()  # makes the folder
            if store.has(MANIFEST):  # another writer made it since the first look: plan again, under the lock
                old, meta, finished = _prepare(store, plan, prompts, template, True)
        old = store.read_manifest() if store.has(MANIFEST) else old  # with any tail repair noted
        store.write_manifest(_manifest(plan, old, template, prompts, finished))
        if meta is not None:
            meta.keep(store)
        store.write_problems(plan.problems)
        store.begin(RUN_STAGE, expected=expected)
    except BaseException:
        store.unlock()
        raise
    have = stored_count(plan.problems, finished, k)
    if have == expected:
        try:
            store.end(RUN_STAGE, "done", samples=have)
        finally:
            store.unlock()
        return RunOutcome(plan.path, "done", 0, have, expected, "nothing to generate: all samples are stored")
    chunk = plan.config.chunk_size or DEFAULT_CHUNK_SAMPLES
    requests = iter_pending(plan.problems, prompts, finished, k, plan.sampling.seed, max_samples=chunk)
    observer.planned(plan.path, have, expected)
    own_engine = engine is None
    generated = 0
    state, message = "done", ""
    try:
        if engine is None:
            engine = _build_engine(plan, observer)
        if engine.options is not None:  # the options after the engine's own defaults
            engine_info = {
                **store.read_manifest().get("engine", {}),
                "effective_options": public_options(plan.model.engine, engine.options),
            }
            store.update_manifest(engine=engine_info)
        generated = _loop(engine, requests, chunk, plan.sampling, store, have, expected, observer, finished)
        store.end(RUN_STAGE, "done", samples=have + generated)
    except KeyboardInterrupt:
        state, message = "interrupted", "interrupted"
    except EngineOutOfMemory as exc:
        state, message = "failed", f"out of memory: {exc}"
    except EngineError as exc:
        state, message = "failed", str(exc)
    except StoreError as exc:  # a full disk or a folder that became unwritable: the batch in hand was not stored
        state, message = "failed", str(exc)
    finally:
        try:
            if own_engine and engine is not None:
                engine.close()
        finally:
            if state != "done":
                try:
                    # an interrupt can land between a batch's write and ``finished.update``: the file decides
                    finished.update(store.finished())
                except Exception:  # noqa: BLE001 - the samples are what matters
                    pass
                try:
                    store.end(RUN_STAGE, state, error=message, samples=stored_count(plan.problems, finished, k))
                except Exception:  # noqa: BLE001 - a full disk may refuse the manifest too
                    pass
            store.unlock()
    stored = stored_count(plan.problems, finished, k)  # kept up to date by _loop (and the file, if stopped)
    if state != "done":
        message = (
            f"{message}; {stored}/{expected} samples are kept in {plan.path} (run the same command again to resume)"
        )
    return RunOutcome(plan.path, state, generated, stored, expected, message)


def _loop(
    engine: Engine,
    requests: Iterable[GenerationRequest],
    chunk: int,
    sampling: SamplingConfig,
    store: RunStore,
    have: int,
    expected: int,
    observer: RunObserver,
    finished: set[tuple[str, int]],
) -> int:
    """Store every batch the engine yields, the moment it arrives; the observer hears each step.

    ``finished`` gains the key of every stored sample, so the run knows what it holds
    without reading samples.jsonl again."""
    generated = tokens = 0
    observer.started(expected, have)
    engine.on_progress, engine.on_wait, engine.on_notice = observer.progress, observer.waiting, observer.notice
    try:
        for result in engine.generate_pending(requests, sampling, chunk):
            flagged = [(c, why) for c in result.completions if (why := overlong(c, sampling.max_tokens))]
            store.append_samples(result.completions, result.timing)
            if flagged:  # stored, but never silently (m1eval.engines.replies)
                _note_overlong(store, flagged, sampling.max_tokens, observer)
            finished.update(c.key for c in result.completions)
            generated += len(result.completions)
            tokens += result.timing.generated_tokens
            observer.stored(generated, tokens)
    finally:
        engine.on_progress = engine.on_wait = engine.on_notice = None
        observer.finished()
    return generated


OVERLONG, OVERLONG_TOTAL = "overlong", "overlong_total"  # manifest keys: the replies, how many in all
OVERLONG_KEPT = 100  # replies the manifest describes one by one (the total counts every one)


def _note_overlong(
    store: RunStore, flagged: list[tuple[Completion, str]], max_tokens: int, observer: RunObserver
) -> None:
    """Warn about replies longer than ``max_tokens`` allows and record them in the manifest."""
    manifest = store.read_manifest()
    kept = list(manifest.get(OVERLONG) or [])
    kept += [overlong_record(c, max_tokens, why) for c, why in flagged][: max(0, OVERLONG_KEPT - len(kept))]
    total = int(manifest.get(OVERLONG_TOTAL) or 0) + len(flagged)
    store.update_manifest(**{OVERLONG: kept, OVERLONG_TOTAL: total})
    first, why = flagged[0]
    more = f" and {len(flagged) - 1} more" if len(flagged) > 1 else ""
    observer.notice(
        f"warning: the engine sent a reply longer than max_tokens allows (problem {first.problem_id!r} sample "
        f"{first.sample_index}: {why}){more}; stored as sent and recorded in the manifest ({OVERLONG!r})"
    )


def _build_engine(plan: RunPlan, observer: RunObserver) -> Engine:
    """The plan's engine in this process or, with ``--replicas``, a pool of Ray actors holding one each."""
    if plan.config.replicas is None:
        return engine_class(plan.model.engine)(plan.model.path, options=dict(plan.engine_options))
    from m1eval.engines.replicas import ReplicaPool

    return ReplicaPool(
        plan.model.engine,
        plan.model.path,
        dict(plan.engine_options),
        plan.config.replicas,
        chunk_size=plan.config.chunk_size,
        max_chunk=DEFAULT_CHUNK_SAMPLES,
        on_notice=observer.notice,
        on_status=observer.status,
    )
