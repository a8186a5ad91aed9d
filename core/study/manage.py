"""Creating studies and looking them up.

``create_study`` validates everything first (definition, installed model weights, every
image readable) and then writes the study, its candidates, cases, readers and the whole
reading plan in one transaction: a study exists completely or not at all.

Generator candidates are pinned to the sha256 of the weights installed at creation, and a
segmentation study to its segmenter's; rendering refuses other weights, so every reader of
a study sees the output of the same models.
"""

from __future__ import annotations

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

    def reader(self, name: str) -> ReaderInfo:
        for r in self.readers:
            if r.name == name:
                return r
        raise StudyStateError(self.name, f"no reader {name!r} in this study (readers: "
                                         f"{', '.join(r.name for r in self.readers)})")


@dataclass(frozen=True)
class StudySummary:
    name: str
    kind: str
    cases: int
    candidates: int
    readers: int
    queries: int
    votes: int
    created_at: datetime


@dataclass(frozen=True)
class ReaderProgress:
    name: str
    done: int
    total: int


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
            row.presentation_size, row.pane_labels, row.segmenter_sha256, row.fingerprint, row.created_at,
            tuple(CandidateInfo(c.id, c.position, parse_candidate(c.spec), c.model_sha256) for c in row.candidates),
            tuple(CaseInfo(c.id, c.position, c.key, Path(c.path), c.file_sha256, c.label) for c in row.cases),
            tuple(ReaderInfo(r.id, r.position, r.name, r.seed) for r in row.readers),
        )


def list_studies(store: Store) -> list[StudySummary]:
    with store.read() as s:
        out = []
        for st in s.scalars(select(Study).order_by(Study.created_at, Study.id)):
            queries = s.scalar(select(func.count(Assignment.id)).where(Assignment.study_id == st.id)) or 0
            votes = s.scalar(select(func.count(Vote.id)).join(Assignment).where(Assignment.study_id == st.id)) or 0
            out.append(StudySummary(st.name, st.kind, len(st.cases), len(st.candidates), len(st.readers),
                                    queries, votes, st.created_at))
        return out


def list_readers(store: Store, study: str | int) -> list[ReaderProgress]:
    """Each reader's progress: queries answered (at least one vote) out of their total."""
    with store.read() as s:
        row = _study_row(s, study)
        total = dict(s.execute(select(Assignment.reader_id, func.count(Assignment.id))
                               .where(Assignment.study_id == row.id).group_by(Assignment.reader_id)).all())
        done = dict(s.execute(select(Assignment.reader_id, func.count(func.distinct(Vote.assignment_id)))
                              .join(Vote, Vote.assignment_id == Assignment.id)
                              .where(Assignment.study_id == row.id).group_by(Assignment.reader_id)).all())
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


def fingerprint(spec: StudySpec, model_shas: dict[str, str | None], segmenter_sha: str | None) -> str:
    """A digest of everything that defines the study's plan and pictures (not its name or paths).

    Two sites that create a study from the same files, settings, seed and weights get the
    same fingerprint, which is how vote import knows the studies match.
    """
    payload = {
        "kind": spec.kind, "design": spec.design, "anchor": spec.anchor_cases, "qc": spec.qc_repeats,
        "seed": spec.seed, "show_label": spec.show_label, "size": spec.presentation_size,
        "pane_labels": spec.pane_labels, "readers": spec.readers, "segmenter": segmenter_sha,
        "candidates": [[c.spec, model_shas.get(c.spec)] for c in spec.candidates],
        "cases": [[c.key, c.sha256, c.label] for c in spec.cases],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


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
                 verify_images: bool = True) -> StudyInfo:
    """Validate ``spec`` and write the study and its reading plan atomically."""
    spec.validate()
    model_shas = {c.spec: pinned_sha256(c.variant_id, c.spec) for c in spec.candidates if c.kind == "generator"}
    segmenter_sha = pinned_sha256(SEGMENTER_ID, "segmentation study") if spec.kind == "segmentation" else None
    with store.read() as s:
        if s.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
            raise StudyDefinitionError(spec.name, f"a study with this name already exists in {store.display_url}")
    if verify_images:
        check_images(spec, progress)
    plan = design.plan(len(spec.cases), len(spec.candidates), len(spec.readers), spec.design, spec.anchor_cases,
                       spec.qc_repeats, spec.seed)
    with store.write() as s:
        if s.scalar(select(Study.id).where(Study.name == spec.name)) is not None:
            raise StudyDefinitionError(spec.name, "a study with this name was just created by someone else")
        study = Study(name=spec.name, kind=spec.kind, show_label=spec.show_label, design=spec.design,
                      anchor_cases=spec.anchor_cases, qc_repeats=spec.qc_repeats, seed=spec.seed,
                      presentation_size=spec.presentation_size, pane_labels=spec.pane_labels,
                      segmenter_sha256=segmenter_sha, fingerprint=fingerprint(spec, model_shas, segmenter_sha),
                      created_at=utcnow())
        s.add(study)
        cands = [Candidate(study=study, position=i, spec=c.spec, kind=c.kind, variant_id=c.variant_id,
                           iterations=c.iterations, display_name=c.display_name, model_sha256=model_shas.get(c.spec))
                 for i, c in enumerate(spec.candidates)]
        cases = [Case(study=study, position=i, key=c.key, path=str(c.path), file_sha256=c.sha256, label=c.label)
                 for i, c in enumerate(spec.cases)]
        s.add_all(cands + cases)
        s.flush()
        for r, (name, queries) in enumerate(zip(spec.readers, plan, strict=True)):
            reader = Reader(study=study, position=r, name=name, seed=design.reader_seed(spec.seed, r))
            s.add(reader)
            rows: list[Assignment] = []
            for seq, q in enumerate(queries):
                row = Assignment(study_id=study.id, reader=reader, case_id=cases[q.case].id, seq=seq,
                                 pane_order=",".join(str(p) for p in q.panes), shared=q.shared,
                                 repeat_of=rows[q.repeat_of] if q.repeat_of is not None else None)
                rows.append(row)
            s.add_all(rows)
        study_id = study.id
    return load_study(store, study_id)
