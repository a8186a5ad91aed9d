"""The blinded reader study: definition, design, matched rendering, durable votes, statistics.

The public API the GUI and the command line use (see each module for the why):

* ``open_store(database)`` — a SQLite file or a PostgreSQL URL, migrated on open.
* ``StudySpec`` + ``read_cases`` / ``parse_candidates`` / ``default_reader_names`` -> ``create_study``.
* ``precompute(store, study, progress=, cancelled=)`` — every pane rendered and cached, resumable.
* ``ReadingSession(store, study, reader)`` — the blinded reading API (panes, votes, resume).
* ``list_studies`` / ``list_readers`` / ``load_study`` — what is there and how far readers are.
* ``study_stats`` / ``export_study`` / ``import_votes`` — the analysis and multi-site merging.
* ``create_demo_study(database, workdir)`` -> ``DemoStudy`` — a study from generated phantom images.

Names load on first use (PEP 562), so ``import core.study`` costs nothing until a function
is called; the heavy libraries (torch, statsmodels, matplotlib) load only where needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "CandidateSpec": "core.study.definition",
    "CaseSpec": "core.study.definition",
    "StudySpec": "core.study.definition",
    "cases_from_csv": "core.study.definition",
    "cases_from_folder": "core.study.definition",
    "default_reader_names": "core.study.definition",
    "parse_candidate": "core.study.definition",
    "parse_candidates": "core.study.definition",
    "read_cases": "core.study.definition",
    "DemoStudy": "core.study.demo",
    "create_demo_study": "core.study.demo",
    "default_demo_dir": "core.study.demo",
    "ExportResult": "core.study.export",
    "export_study": "core.study.export",
    "import_votes": "core.study.export",
    "ReaderProgress": "core.study.manage",
    "StudyInfo": "core.study.manage",
    "StudySummary": "core.study.manage",
    "create_study": "core.study.manage",
    "installed_default_iterations": "core.study.manage",
    "installed_generators": "core.study.manage",
    "list_readers": "core.study.manage",
    "list_studies": "core.study.manage",
    "load_study": "core.study.manage",
    "QueryView": "core.study.reading",
    "Pane": "core.study.reading",
    "ReadingSession": "core.study.reading",
    "VoteReceipt": "core.study.reading",
    "PrecomputeResult": "core.study.render",
    "Renderer": "core.study.render",
    "RenditionCache": "core.study.render",
    "precompute": "core.study.render",
    "rendition_status": "core.study.render",
    "StudyStats": "core.study.stats",
    "compute_stats": "core.study.stats",
    "study_stats": "core.study.stats",
    "summary_text": "core.study.report",
    "statistics_items": "core.study.report",
    "column_headers": "core.study.report",
    "AnalysisSettings": "core.study.inference",
    "table_markdown": "core.study.report",
    "Store": "core.study.store",
    "default_database_path": "core.study.store",
    "integrity_check": "core.study.store",
    "open_store": "core.study.store",
}

__all__ = [
    "CandidateSpec",
    "CaseSpec",
    "QueryView",
    "DemoStudy",
    "ExportResult",
    "Pane",
    "PrecomputeResult",
    "ReaderProgress",
    "ReadingSession",
    "Renderer",
    "RenditionCache",
    "Store",
    "StudyInfo",
    "StudySpec",
    "StudyStats",
    "StudySummary",
    "VoteReceipt",
    "cases_from_csv",
    "cases_from_folder",
    "compute_stats",
    "create_demo_study",
    "create_study",
    "default_database_path",
    "default_demo_dir",
    "default_reader_names",
    "export_study",
    "import_votes",
    "installed_default_iterations",
    "installed_generators",
    "integrity_check",
    "list_readers",
    "list_studies",
    "load_study",
    "open_store",
    "parse_candidate",
    "parse_candidates",
    "precompute",
    "read_cases",
    "rendition_status",
    "study_stats",
    "summary_text",
    "statistics_items",
    "column_headers",
    "AnalysisSettings",
    "table_markdown",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core.study' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from core.study.definition import (
        CandidateSpec,
        CaseSpec,
        StudySpec,
        cases_from_csv,
        cases_from_folder,
        default_reader_names,
        parse_candidate,
        parse_candidates,
        read_cases,
    )
    from core.study.demo import DemoStudy, create_demo_study, default_demo_dir
    from core.study.export import ExportResult, export_study, import_votes
    from core.study.inference import AnalysisSettings
    from core.study.manage import (
        ReaderProgress,
        StudyInfo,
        StudySummary,
        create_study,
        installed_default_iterations,
        installed_generators,
        list_readers,
        list_studies,
        load_study,
    )
    from core.study.reading import Pane, QueryView, ReadingSession, VoteReceipt
    from core.study.render import PrecomputeResult, Renderer, RenditionCache, precompute, rendition_status
    from core.study.report import column_headers, statistics_items, summary_text, table_markdown
    from core.study.stats import StudyStats, compute_stats, study_stats
    from core.study.store import Store, default_database_path, integrity_check, open_store
