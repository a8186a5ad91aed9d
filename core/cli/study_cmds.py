"""``r2c-review study ...``: create, precompute, inspect, analyse and merge blinded studies.

Every subcommand takes ``--database`` (a SQLite file or a server URL such as
``postgresql://user:pass@host/db``; default: ``studies.db`` in the user data directory).
"""

from __future__ import annotations

import argparse
import json
import sys

from core.errors import StudyDefinitionError
from core.variants import VARIANTS

ADMIN_ENV = "R2C_ADMIN_PASSWORD"  # a protected study's administrator password, for scripts


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", help="SQLite file or database URL (default: studies.db in the user data dir)")
    common.add_argument("--cache-dir", help="where renditions are cached (default: beside the SQLite file, or the "
                                            "user cache dir for a server)")

    study = sub.add_parser("study", help="blinded reader studies: create, precompute, status, stats, export")
    cmds = study.add_subparsers(dest="study_command", metavar="SUBCOMMAND")
    study.set_defaults(handler=lambda _args: (study.print_help(), 2)[1])

    p = cmds.add_parser("create", parents=[common], help="create a study from a folder or CSV of cases")
    p.add_argument("name", help="study name (unique in the database)")
    p.add_argument("--cases", required=True, help="folder of images (labels from covid_/control_ names or "
                                                  "folders) or CSV with columns file,label[,case]")
    p.add_argument("--candidates", help="comma-separated: original, a generator variant[:ITERATIONS] "
                                        f"({', '.join(VARIANTS)}), clahe[:CLIP], histeq; "
                                        "default: the original and every generator with installed weights")
    readers = p.add_mutually_exclusive_group()
    readers.add_argument("--readers", help="comma-separated reader names")
    readers.add_argument("--n-readers", type=int, default=4, help="number of readers named MD I, MD II, ... "
                                                                  "(default 4, as in the paper)")
    p.add_argument("--design", choices=("split", "all", "anchor"), default="split",
                   help="split cases between readers (paper), all readers read all, or a shared anchor set + split")
    p.add_argument("--anchor", type=int, default=0, help="number of shared anchor cases (anchor design)")
    p.add_argument("--qc-repeats", type=int, default=0, help="hidden repeat cases per reader (consistency check)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw of the study (recorded)")
    p.add_argument("--kind", choices=("restoration", "segmentation", "diagnosis", "authenticity"),
                   default="restoration",
                   help="restoration preference (Table III), lung-segmentation preference (Table IV), "
                        "diagnosis: an MRMC ROC study (labels hidden, every reader rates every case in every "
                        "candidate, one candidate per session), or authenticity: 'real or synthetic?' (single "
                        "films, real and synthetic mixed in a balanced order; the truth is the label real/synthetic "
                        "of the case list, or the film's synthetic mark from r2c-review synthesize)")
    p.add_argument("--rating-scale", choices=("5-point", "0-100"), help="diagnosis: the disease rating scale "
                                                                       "(default 5-point)")
    p.add_argument("--washout-days", type=float, help="diagnosis: least days between a reader's sessions "
                                                      "(default 0)")
    p.add_argument("--hide-labels", action="store_true", help="do not show the disease label to readers")
    p.add_argument("--presentation", choices=["native", "paper"], default="native",
                   help="native (default): every pane at the film's resolution, via guided upsampling; paper: "
                        "every pane at the generators' 256 px, as the R2C-GAN study")
    p.add_argument("--size", type=int, default=None,
                   help="pane size in pixels, longer side (default: 1024 native, at most the film's own; 512 paper)")
    p.add_argument("--pane-labels", choices=("letters", "numbers"), default="letters")
    p.add_argument("--ask-confidence", action="store_true",
                   help="readers rate their confidence (1-5) with every vote")
    p.add_argument("--precompute", action="store_true", help="render every pane right away")
    p.add_argument("--device", help="cpu or cuda for --precompute (default: CUDA if available)")
    p.add_argument("--credentials", metavar="FILE.json", help='the administrator password and every reader\'s PIN: '
                   '{"admin": "...", "readers": {"MD I": "...", ...}} (hashed, never stored in clear; delete the '
                   "file after use); without it the study is open: anyone may read as any reader")
    p.set_defaults(handler=_create)

    p = cmds.add_parser("passwords", parents=[common], help="set or change the administrator password and the "
                                                           "readers' PINs (the current administrator password is "
                                                           f"asked, or read from ${ADMIN_ENV})")
    p.add_argument("name")
    p.add_argument("--credentials", metavar="FILE.json", required=True,
                   help='{"admin": "...", "readers": {"MD I": "...", ...}}')
    p.set_defaults(handler=_passwords)

    p = cmds.add_parser("list", parents=[common], help="list the studies in the database")
    p.set_defaults(handler=_list)

    p = cmds.add_parser("precompute", parents=[common], help="render and cache every pane (resumable)")
    p.add_argument("name")
    p.add_argument("--device", help="cpu or cuda (default: CUDA if available)")
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(handler=_precompute)

    p = cmds.add_parser("status", parents=[common], help="definition, reader progress and cached renditions")
    p.add_argument("name")
    p.set_defaults(handler=_status)

    p = cmds.add_parser("stats", parents=[common], help="selection shares (readers and cases random) with chance "
                                                        "levels, tests, agreement; MRMC ROC for a diagnosis study")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print every statistic as JSON")
    p.add_argument("--weighting", choices=("votes", "cases"), default="votes",
                   help="preference studies: every vote counts once (anchor cases weigh once per reader) or "
                        "every case counts once")
    p.add_argument("--replicates", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument("--cov", choices=("jackknife", "delong", "unbiased"), default="jackknife",
                   help="diagnosis studies: covariance of the AUCs over cases")
    p.set_defaults(handler=_stats)

    p = cmds.add_parser("export", parents=[common], help="votes CSV, tables (CSV, Markdown), JSON summary, chart")
    p.add_argument("name")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=_export)

    p = cmds.add_parser("import-votes", parents=[common], help="merge votes.csv exported by another site")
    p.add_argument("csv", help="votes.csv from 'study export' at the other site")
    p.add_argument("--study", help="study to merge into (default: the one named in the file)")
    p.set_defaults(handler=_import)

    p = cmds.add_parser("backup", parents=[common], help="consistent copy of a SQLite study database, even while "
                                                         "readers vote (SQLite online backup), checked after copying")
    p.add_argument("out", help="backup file, or a folder (a time-stamped file is made in it)")
    p.set_defaults(handler=_backup)


def _open(args: argparse.Namespace):
    from core.study.store import open_store

    return open_store(args.database, cache_dir=args.cache_dir)


def _bar(desc: str, unit: str = "img"):
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def _renderer(store, name: str, device: str | None, batch_size: int = 8):
    from core.restore import Restorer
    from core.study.manage import load_study
    from core.study.render import Renderer, RenditionCache

    info = load_study(store, name)
    return Renderer(info, RenditionCache(store.cache_dir), restorer=Restorer(device) if device else None,
                    batch_size=batch_size)


def _run_precompute(store, name: str, device: str | None, batch_size: int = 8) -> int:
    from core.study.render import precompute

    bar, update = _bar(f"precompute {name}")
    try:
        result = precompute(store, name, _renderer(store, name, device, batch_size), progress=update)
    finally:
        bar.close()
    print(f"{name}: {result.cached_before + result.computed}/{result.total} renditions cached "
          f"({result.computed} made now) in {store.cache_dir}")
    return 0


def _create(args: argparse.Namespace) -> int:
    from core.study.definition import StudySpec, default_reader_names, parse_candidates, read_cases
    from core.study.manage import installed_default_iterations, installed_generators

    if args.kind == "authenticity":
        return _create_authenticity(args)
    cands = args.candidates
    if cands is None:
        cands = ["original", *installed_generators()]
        if len(cands) == 1:
            raise StudyDefinitionError(None, "no generator weights are installed; name candidates with --candidates "
                                             "(e.g. original,clahe,histeq)")
    candidates = parse_candidates(cands, installed_default_iterations())
    from core.study.presentation import DEFAULT_SIZE
    names = [r for r in args.readers.split(",")] if args.readers else default_reader_names(args.n_readers)
    spec = StudySpec(name=args.name, cases=read_cases(args.cases), candidates=candidates, readers=names,
                     kind=args.kind, design=args.design, anchor_cases=args.anchor, qc_repeats=args.qc_repeats,
                     seed=args.seed, show_label=not args.hide_labels, presentation=args.presentation,
                     presentation_size=args.size or DEFAULT_SIZE[args.presentation],
                     pane_labels=args.pane_labels, ask_confidence=args.ask_confidence,
                     rating_scale=args.rating_scale, washout_days=args.washout_days)
    if args.kind == "diagnosis":  # labels hidden and every reader reads everything, whatever else was given
        spec.show_label, spec.design = False, "all"
    creds = _credentials(args)
    with _open(args) as store:
        info = _create_checked(store, spec, creds)
        print(f"created study {info.name!r} in {store.display_url}: {len(info.cases)} cases, "
              f"{len(info.candidates)} candidates ({', '.join(c.display_name for c in info.candidates)}), "
              f"{len(info.readers)} readers ({info.design} design), seed {info.seed}")
        if creds is None:
            print("no passwords: anyone may read as any reader; set them with 'r2c-review study passwords'",
                  file=sys.stderr)
        if args.precompute:
            return _run_precompute(store, info.name, args.device)
    return 0


def _credentials(args: argparse.Namespace):  # noqa: ANN202 - StudyCredentials | None, imported lazily
    """The administrator password and reader PINs of ``--credentials FILE.json``, or None (an open study)."""
    if not args.credentials:
        return None
    from core.study.credentials import read_credentials_file

    return read_credentials_file(args.credentials)


def _create_checked(store, spec, creds):  # noqa: ANN001, ANN202 - engine types, imported lazily
    """``create_study`` with a progress bar over the image checks."""
    from core.study.manage import create_study

    bar, update = _bar("checking images")
    try:
        return create_study(store, spec, progress=update, credentials=creds)
    finally:
        bar.close()


def _create_authenticity(args: argparse.Namespace) -> int:
    """A real-or-synthetic study: the film as it is (no candidates), truth hidden, matched square panes."""
    from core.study.authenticity import label_authenticity
    from core.study.definition import ORIGINAL, StudySpec, default_reader_names, read_cases

    if args.candidates:
        raise StudyDefinitionError(None, "a real-or-synthetic study shows each film as it is: no --candidates")
    names = [r for r in args.readers.split(",")] if args.readers else default_reader_names(args.n_readers)
    spec = StudySpec(name=args.name, cases=label_authenticity(read_cases(args.cases)), candidates=[ORIGINAL],
                     readers=names, kind="authenticity", design=args.design, anchor_cases=args.anchor,
                     qc_repeats=args.qc_repeats, seed=args.seed, show_label=False, presentation="paper",
                     presentation_size=args.size or 512, pane_labels=args.pane_labels,
                     ask_confidence=args.ask_confidence)
    creds = _credentials(args)
    with _open(args) as store:
        info = _create_checked(store, spec, creds)
        n_syn = sum(c.label == "synthetic" for c in info.cases)
        print(f"created real-or-synthetic study {info.name!r} in {store.display_url}: {len(info.cases) - n_syn} real "
              f"and {n_syn} synthetic films, {len(info.readers)} readers ({info.design} design), seed {info.seed}")
        if args.precompute:
            return _run_precompute(store, info.name, args.device)
    return 0


def _list(args: argparse.Namespace) -> int:
    from core.study.manage import list_studies

    with _open(args) as store:
        studies = list_studies(store)
        if not studies:
            print(f"no studies in {store.display_url}")
        for s in studies:
            print(f"{s.name}\t{s.kind}\t{s.cases} cases\t{s.candidates} candidates\t{s.readers} readers\t"
                  f"{s.votes} votes / {s.queries} queries\tcreated {s.created_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _precompute(args: argparse.Namespace) -> int:
    with _open(args) as store:
        return _run_precompute(store, args.name, args.device, args.batch_size)


def _status(args: argparse.Namespace) -> int:
    from core.study.manage import list_readers, load_study
    from core.study.render import rendition_status

    with _open(args) as store:
        info = load_study(store, args.name)
        cached, total = rendition_status(store, info.id)
        print(f"study {info.name!r} ({info.kind}), design {info.design}"
              f"{f' with {info.anchor_cases} anchor cases' if info.design == 'anchor' else ''}, seed {info.seed}, "
              f"{info.qc_repeats} QC repeat(s) per reader, labels {'shown' if info.show_label else 'hidden'}, "
              f"panes {info.presentation} up to {info.presentation_size} px, "
              f"confidence {'asked (1-5)' if info.ask_confidence else 'not asked'}")
        print(f"fingerprint {info.fingerprint[:16]}…  database {store.display_url}")
        print(f"cases: {len(info.cases)}  candidates: " + ", ".join(
            f"{c.display_name} [{c.spec.spec}]" for c in info.candidates))
        print(f"renditions cached: {cached}/{total} in {store.cache_dir}")
        for r in list_readers(store, info.id):
            print(f"  {r.name}: {r.done}/{r.total} answered")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from core.study.export import json_safe
    from core.study.inference import AnalysisSettings
    from core.study.manage import load_study
    from core.study.report import summary_text
    from core.study.stats import study_stats

    with _open(args) as store:
        _admin(store, args.name)
        if load_study(store, args.name).kind == "diagnosis":
            from core.study.diagnosis import diagnosis_results

            results = diagnosis_results(store, args.name, args.cov)
            print(json.dumps(json_safe(results.to_dict()), indent=2) if args.json else results.text())
            return 0
        try:
            settings = AnalysisSettings(replicates=args.replicates, weighting=args.weighting)
        except ValueError as exc:
            raise StudyDefinitionError(None, str(exc)) from None
        if load_study(store, args.name).kind == "authenticity":
            from core.study.authenticity import authenticity_results

            auth = authenticity_results(store, args.name, settings)
            print(json.dumps(json_safe(auth.to_dict()), indent=2) if args.json else auth.text())
            return 0
        stats = study_stats(store, args.name, settings)
        print(json.dumps(json_safe(stats.to_dict()), indent=2) if args.json else summary_text(stats))
    return 0


def _export(args: argparse.Namespace) -> int:
    from core.study.export import export_study

    with _open(args) as store:
        _admin(store, args.name)
        result = export_study(store, args.name, args.out)
        print(f"exported {result.votes} votes of {args.name!r} to {result.folder}: "
              + ", ".join(p.name for p in result.files))
    return 0


def _backup(args: argparse.Namespace) -> int:
    from core.study.store import backup_database

    with _open(args) as store:
        target = backup_database(store, args.out)
        print(f"backed up {store.display_url} to {target} (integrity check: ok)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from core.study.export import import_votes

    with _open(args) as store:
        count = import_votes(store, args.csv, args.study)
        print(f"imported {count} votes from {args.csv}")
    return 0


def _admin(store, name: str) -> str | None:
    """A protected study's administrator password (from $R2C_ADMIN_PASSWORD or asked), checked; None if open."""
    import getpass
    import os

    from core.study.credentials import authenticate_admin, is_protected

    if not is_protected(store, name):
        return None
    password = os.environ.get(ADMIN_ENV)
    if password is None:
        if not sys.stdin.isatty():
            raise StudyDefinitionError(name, "this study is protected: give its administrator password in "
                                             f"${ADMIN_ENV}")
        password = getpass.getpass(f"Administrator password of {name!r}: ")
    authenticate_admin(store, name, password)
    return password


def _passwords(args: argparse.Namespace) -> int:
    from core.study.credentials import read_credentials_file, set_credentials

    creds = read_credentials_file(args.credentials)
    with _open(args) as store:
        set_credentials(store, args.name, creds, _admin(store, args.name))
        print(f"{args.name!r}: administrator password and {len(creds.reader_pins)} reader PIN(s) set (stored as "
              "scrypt hashes); reading now needs the reader's PIN")
    return 0
