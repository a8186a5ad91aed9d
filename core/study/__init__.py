"""The blinded reader study: definition, design, matched rendering, durable votes, statistics.

The public API the GUI and the command line use (see each module for the why):

* ``open_store(database)`` — a SQLite file or a PostgreSQL URL, migrated on open.
* ``StudySpec`` + ``read_cases`` / ``parse_candidates`` / ``default_reader_names`` -> ``create_study``.
* ``precompute(store, study, progress=, cancelled=)`` — every pane rendered and cached, resumable.
* ``ReadingSession(store, study, reader)`` — the blinded reading API (panes, votes, resume).
* ``list_studies`` / ``list_readers`` / ``load_study`` — what is there and how far readers are.
* ``study_stats`` / ``export_study`` / ``import_votes`` — the analysis and multi-site merging.
* ``create_demo_study(database, workdir)`` — a study from generated phantom images.
"""

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
from core.study.demo import create_demo_study
from core.study.export import ExportResult, export_study, import_votes
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
from core.study.reading import CaseView, Pane, ReadingSession, VoteReceipt
from core.study.render import PrecomputeResult, Renderer, RenditionCache, precompute
from core.study.stats import StudyStats, compute_stats, study_stats, summary_text, table_markdown
from core.study.store import Store, default_database_path, integrity_check, open_store

__all__ = [
    "CandidateSpec", "CaseSpec", "CaseView", "ExportResult", "Pane", "PrecomputeResult", "ReaderProgress",
    "ReadingSession", "Renderer", "RenditionCache", "Store", "StudyInfo", "StudySpec", "StudyStats",
    "StudySummary", "VoteReceipt", "cases_from_csv", "cases_from_folder", "compute_stats", "create_demo_study",
    "create_study", "default_database_path", "default_reader_names", "export_study", "import_votes",
    "installed_default_iterations", "installed_generators", "integrity_check", "list_readers", "list_studies",
    "load_study", "open_store", "parse_candidate", "parse_candidates", "precompute", "read_cases",
    "study_stats", "summary_text", "table_markdown",
]
