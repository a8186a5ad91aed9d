"""Creating studies and looking them up.

``create_study`` validates everything first (definition, installed model weights, every
image readable) and then writes the study, its candidates, cases, readers and the whole
reading plan in one transaction: a study exists completely or not at all.

Generator candidates are pinned to the sha256 of the weights installed at creation, and a
segmentation study to its segmenter's; rendering refuses other weights, so every reader of
a study sees the output of the same models.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import R2CError, StudyDefinitionError, StudyStateError, WeightsError
from core.study import design, images
from core.study.credentials import StudyCredentials, hash_secret
from core.study.definition import CandidateSpec, StudySpec, parse_candidate
from core.study.store import Assignment, Candidate, Case, Reader, Store, Study, Vote, utcnow
from core.variants import SEGMENTER_ID, VARIANTS, get_variant, weights_path

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CandidateInfo:
    id: int
    position: int
    spec: CandidateSpec
    model_sha256: str | None

    @property
    def display_name(self) -> str:
        return self.spec.display_name


@dataclass(frozen=True)
class CaseInfo:
    id: int
    position: int
    key: str
    path: Path
    file_sha256: str
    label: str | None


@dataclass(frozen=True)
class ReaderInfo:
    id: int
    position: int
    name: str
    seed: int


@dataclass(frozen=True)
class StudyInfo:
    """A study's definition, detached from the database session (safe to pass to threads)."""

    id: int
    name: str
    kind: str
    show_label: bool
    design: str
    anchor_cases: int
    qc_repeats: int
    seed: int
    presentation_size: int
    pane_labels: str
    segmenter_sha256: str | None
    fingerprint: str
    created_at: datetime
    candidates: tuple[CandidateInfo, ...]
    cases: tuple[CaseInfo, ...]
    readers: tuple[ReaderInfo, ...]
    ask_confidence: bool = False  # readers rate their confidence (1-5) with every vote
    rating_scale: str | None = None  # diagnosis studies: "5-point" or "0-100"
    washout_days: float | None = None  # diagnosis studies: least days between a reader's sessions
    presentation: str = "paper"  # core.study.presentation: "paper" (256 px) or "native"

    def reader(self, name: str) -> ReaderInfo:
        for r in self.readers:
            if r.name == name:
                return r
        raise StudyStateError(self.name, f"no reader {name!r} in this study (readers: "
                                         f"{', '.join(r.name for r in self.readers)})")


@dataclass(frozen=True)
class ReaderProgress:
    name: str
    done: int
    total: int


@dataclass(frozen=True)
class StudySummary:
    """One line of ``list_studies``: enough for a study list or overview without loading every case."""

    name: str
    kind: str
    cases: int
    candidates: int
    readers: int
    queries: int
    votes: int
    created_at: datetime
    id: int
    design: str
    anchor_cases: int
    qc_repeats: int
    seed: int
    show_label: bool
    ask_confidence: bool
    presentation_size: int
    pane_labels: str
    candidate_names: tuple[str, ...]  # display names in column order, the original first
    reader_progress: tuple[ReaderProgress, ...]  # in reader order
    presentation: str = "paper"  # core.study.presentation: "paper" (256 px) or "native"
    protected: bool = False  # has an administrator password and reader PINs (core.study.credentials)


def _study_row(session: Session, study: str | int) -> Study:
    stmt = select(Study).where(Study.id == study) if isinstance(study, int) else select(Study).where(
        Study.name == study)
    row = session.scalars(stmt).first()
    if row is None:
        names = session.scalars(select(Study.name).order_by(Study.name)).all()
        raise StudyStateError(str(study), "no such study" + (f" (studies: {', '.join(names)})" if names else
                                                              " (the database has no studies yet)"))
    return row


def load_study(store: Store, study: str | int) -> StudyInfo:
    """Everything about a study's definition, by name or id."""
    with store.read() as s:
        row = _study_row(s, study)
        return StudyInfo(
            row.id, row.name, row.kind, row.show_label, row.design, row.anchor_cases, row.qc_repeats, row.seed,
            row.presentation_size, row.pane_labels, row.segmenter_sha256, row.fingerprint,
            row.created_at,
            tuple(CandidateInfo(c.id, c.position, parse_candidate(c.spec), c.model_sha256) for c in row.candidates),
            tuple(CaseInfo(c.id, c.position, c.key, Path(c.path), c.file_sha256, c.label) for c in row.cases),
            tuple(ReaderInfo(r.id, r.position, r.name, r.seed) for r in row.readers),
            ask_confidence=row.ask_confidence, rating_scale=row.rating_scale, washout_days=row.washout_days,
            presentation=row.presentation or "paper",
        )


def _counts(session: Session, stmt) -> dict:
    return {key: count for key, count in session.execute(stmt).all()}


def list_studies(store: Store) -> list[StudySummary]:
    """Every study with its settings, candidate names and reader progress, in a fixed number of queries."""
    with store.read() as s:
        studies = s.scalars(select(Study).order_by(Study.created_at, Study.id)).all()
        cases = _counts(s, select(Case.study_id, func.count(Case.id)).group_by(Case.study_id))
        queries = _counts(s, select(Assignment.study_id, func.count(Assignment.id)).group_by(Assignment.study_id))
        votes = _counts(s, select(Assignment.study_id, func.count(Vote.id)).join(Vote, Vote.assignment_id ==
                                                                                  Assignment.id)
                        .group_by(Assignment.study_id))
        names: dict[int, list[str]] = {}
        for study_id, name in s.execute(select(Candidate.study_id, Candidate.display_name)
                                        .order_by(Candidate.study_id, Candidate.position)):
            names.setdefault(study_id, []).append(name)
        assigned = _counts(s, select(Assignment.reader_id, func.count(Assignment.id)).group_by(Assignment.reader_id))
        answered = _counts(s, select(Assignment.reader_id, func.count(func.distinct(Vote.assignment_id)))
                           .join(Vote, Vote.assignment_id == Assignment.id).group_by(Assignment.reader_id))
        readers: dict[int, list[ReaderProgress]] = {}
        for r in s.scalars(select(Reader).order_by(Reader.study_id, Reader.position)):
            readers.setdefault(r.study_id, []).append(ReaderProgress(r.name, answered.get(r.id, 0),
                                                                     assigned.get(r.id, 0)))
        return [StudySummary(
            st.name, st.kind, cases.get(st.id, 0), len(names.get(st.id, [])), len(readers.get(st.id, [])),
            queries.get(st.id, 0), votes.get(st.id, 0), st.created_at, id=st.id, design=st.design,
            anchor_cases=st.anchor_cases, qc_repeats=st.qc_repeats, seed=st.seed, show_label=st.show_label,
            ask_confidence=st.ask_confidence, presentation_size=st.presentation_size,
            presentation=st.presentation or "paper", pane_labels=st.pane_labels,
            candidate_names=tuple(names.get(st.id, [])), reader_progress=tuple(readers.get(st.id, [])),
            protected=st.admin_hash is not None,
        ) for st in studies]


def list_readers(store: Store, study: str | int) -> list[ReaderProgress]:
    """Each reader's progress: queries answered (at least one vote) out of their total."""
    with store.read() as s:
        row = _study_row(s, study)
        total = _counts(s, select(Assignment.reader_id, func.count(Assignment.id))
                        .where(Assignment.study_id == row.id).group_by(Assignment.reader_id))
        done = _counts(s, select(Assignment.reader_id, func.count(func.distinct(Vote.assignment_id)))
                       .join(Vote, Vote.assignment_id == Assignment.id)
                       .where(Assignment.study_id == row.id).group_by(Assignment.reader_id))
        return [ReaderProgress(r.name, done.get(r.id, 0), total.get(r.id, 0)) for r in row.readers]


def installed_default_iterations() -> dict[str, int]:
    """Variant id -> default iterations of its installed weights (manifest), for parsing specs."""
    from core.weights.model_file import read_manifest

    out = {}
    for vid in VARIANTS:
        path = weights_path(vid)
        if path is not None:
            try:
                out[vid] = read_manifest(path, verify=False).default_iterations
            except WeightsError:
                continue
    return out


def installed_generators() -> list[str]:
    """Variant ids with weights installed (``$R2C_MODELS_DIR`` or resources/models)."""
    return [vid for vid in VARIANTS if weights_path(vid) is not None]


def pinned_sha256(model_id: str, what: str) -> str:
    """sha256 of the installed, verified weights of a variant or the segmenter."""
    from core.weights.model_file import read_manifest, sha256_of

    path = weights_path(model_id)
    if path is None:
        raise StudyDefinitionError(what, f"no trained weights installed for {model_id} "
                                         f"(install {model_id}.safetensors in resources/models or $R2C_MODELS_DIR)")
    try:
        manifest = read_manifest(path)
    except WeightsError as exc:
        raise StudyDefinitionError(what, exc.one_line()) from None
    if model_id == SEGMENTER_ID:
        if manifest.kind != "segmenter":
            raise StudyDefinitionError(path, f"holds a {manifest.kind}, not the lung segmenter")
    else:
        variant = get_variant(model_id)
        if manifest.kind != "generator" or (manifest.architecture, manifest.q) != (variant.architecture, variant.q):
            raise StudyDefinitionError(path, f"holds {manifest.kind} {manifest.architecture} q={manifest.q}, "
                                             f"not {variant.display_name}")
    return manifest.sha256 or sha256_of(path)


FINGERPRINT_VERSION = 2
# Fields of the definition that never enter the fingerprint: the name is local, the cases and the
# candidates enter by content (image hashes, pinned weights), not by how a site lists them.
_NOT_FINGERPRINTED = frozenset({"name", "cases", "candidates"})


def fingerprint(spec: StudySpec, model_shas: dict[str, str | None], segmenter_sha: str | None) -> str:
    """A digest of everything that defines the study's plan, pictures and questions, never names or paths.

    Cases enter by image content hash (and label), in listing order (the plan depends on it);
    every other field of the definition enters under its own name, so a field added to
    ``StudySpec`` (e.g. a presentation choice) is covered without touching this function. Two
    sites that list the same images, from any folders, with the same settings, seed and weights
    get the same fingerprint, which is how vote import knows the studies match.
    """
    settings = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in _NOT_FINGERPRINTED}
    payload = {
        "version": FINGERPRINT_VERSION, "definition": settings, "segmenter": segmenter_sha,
        "candidates": [[c.spec, model_shas.get(c.spec)] for c in spec.candidates],
        "cases": [[c.sha256, c.label] + ([c.tier] if c.tier else []) for c in spec.cases],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_images(spec: StudySpec, progress: Progress | None = None) -> None:
    """Decode every case once, so that a study never exists with an unreadable image."""
    problems = []
    for i, case in enumerate(spec.cases):
        try:
            images.load_display(case.path)
        except R2CError as exc:
            problems.append(f"case {case.key}: {exc.reason}")
        if progress:
            progress(i + 1, len(spec.cases))
    if problems:
        first_bad = next(c.path for c in spec.cases if problems[0].startswith(f"case {c.key}:"))
        error = StudyDefinitionError(first_bad if len(problems) == 1 else None,
                                     f"{len(problems)} unreadable image(s): " + "; ".join(problems[:10]))
        error.problems = problems  # type: ignore[attr-defined]
        raise error


def create_study(store: Store, spec: StudySpec, progress: Progress | None = None,
                 verify_images: bool = True, credentials: StudyCredentials | None = None) -> StudyInfo:
    """Validate ``spec`` and write the study and its reading plan atomically.

    ``credentials`` (the administrator password and every reader's PIN) make it a protected
    study from its first moment; without them it is open (``core.study.credentials``)."""
    spec.validate()
    if credentials is not None:
        credentials.validate(list(spec.readers))
    model_shas = {c.spec: pinned_sha256(c.variant_id, c.spec) for c in spec.candidates if c.kind == "generator"}
    segmenter_sha = pinned_sha256(SEGMENTER_ID, "segmentation study") if spec.kind == "segmentation" else None
    with store.read() as s:
        if s.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
            raise StudyDefinitionError(spec.name, f"a study with this name already exists in {store.display_url}")
    if verify_images:
        check_images(spec, progress)
    try:
        if spec.kind == "diagnosis":
            plan = design.plan_diagnosis(len(spec.cases), len(spec.candidates), len(spec.readers), spec.seed)
        elif spec.kind == "authenticity":
            plan = design.plan_authenticity([c.label or "" for c in spec.cases], len(spec.readers), spec.design,
                                            spec.anchor_cases, spec.seed)
        else:
            plan = design.plan(len(spec.cases), len(spec.candidates), len(spec.readers), spec.design,
                               spec.anchor_cases, spec.qc_repeats, spec.seed, [c.stratum for c in spec.cases])
    except ValueError as exc:
        raise StudyDefinitionError(spec.name, str(exc)) from None
    with store.write() as s:
        if s.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
            raise StudyDefinitionError(spec.name, "a study with this name was just created by someone else")
        study = Study(name=spec.name, kind=spec.kind, show_label=spec.show_label, design=spec.design,
                      anchor_cases=spec.anchor_cases, qc_repeats=spec.qc_repeats, seed=spec.seed,
                      presentation_size=spec.presentation_size, presentation=spec.presentation,
                      pane_labels=spec.pane_labels,
                      ask_confidence=spec.ask_confidence, segmenter_sha256=segmenter_sha,
                      rating_scale=spec.rating_scale, washout_days=spec.washout_days,
                      fingerprint=fingerprint(spec, model_shas, segmenter_sha), created_at=utcnow(),
                      admin_hash=hash_secret(credentials.admin_password) if credentials else None)
        s.add(study)
        cands = [Candidate(study=study, position=i, spec=c.spec, kind=c.kind, variant_id=c.variant_id,
                           iterations=c.iterations, display_name=c.display_name, model_sha256=model_shas.get(c.spec))
                 for i, c in enumerate(spec.candidates)]
        cases = [Case(study=study, position=i, key=c.key, path=str(c.path), file_sha256=c.sha256, label=c.label)
                 for i, c in enumerate(spec.cases)]
        s.add_all(cands + cases)
        s.flush()
        for r, (name, queries) in enumerate(zip(spec.readers, plan, strict=True)):
            reader = Reader(study=study, position=r, name=name, seed=design.reader_seed(spec.seed, r),
                            pin_hash=hash_secret(credentials.reader_pins[name]) if credentials else None)
            s.add(reader)
            rows: list[Assignment] = []
            for seq, q in enumerate(queries):
                row = Assignment(study_id=study.id, reader=reader, case_id=cases[q.case].id, seq=seq,
                                 pane_order=",".join(str(p) for p in q.panes), shared=q.shared,
                                 repeat_of=rows[q.repeat_of] if q.repeat_of is not None else None,
                                 session=q.session)
                rows.append(row)
            s.add_all(rows)
        study_id = study.id
    return load_study(store, study_id)
