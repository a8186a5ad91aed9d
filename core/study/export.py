"""Export a study's votes and results; import votes cast at another site.

Export writes into one folder:

* ``votes.csv`` — tidy, one row per vote (amended ones too, flagged), with everything needed
  to re-analyse or to merge elsewhere: study, reader, case id and image content hash (never a
  local path), disease label, pane position,
  chosen variant, all variants in pane order, time to decision, amendment flag, timestamps.
* ``table.csv`` / ``table.md`` — the paper's layout (rows readers + Overall, columns
  Original then each variant); ``table_long.csv`` — one row per reader and candidate with
  counts and Wilson bounds.
* ``summary.json`` — every statistic, and when readers rated their confidence, the mean
  rating per reader per candidate (``mean_confidence``); ``selection.png`` — a bar chart with
  95% error bars.

Import takes a ``votes.csv`` from a site running the *same* study (same definition, seed
and weights: the fingerprint matches) and merges it in one transaction after checking every
row: known reader, case and candidates, the pane order that reader saw matches the stored
one, no vote already present. One bad row and nothing is merged. Where both sites voted on
the same query (normally each site has its own readers), the latest vote by time counts.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.errors import StudyDefinitionError
from core.study import import_rules
from core.study.definition import RATING_SCALES
from core.study.design import pane_label
from core.study.manage import StudyInfo, load_study
from core.study.report import statistics_items, summary_text, table_markdown
from core.study.stats import StudyStats, study_stats
from core.study.store import Assignment, Store, Vote

VOTE_COLUMNS = [
    "study", "study_fingerprint", "vote_uid", "reader", "sequence", "case", "case_sha256", "disease_label", "qc_repeat",
    "pane_position", "pane_label", "chosen_variant", "chosen_name", "pane_variants", "confidence",
    "rating", "decision_ms", "displayed_at", "voted_at", "amendment", "amends_vote_uid", "latest", "origin",
]
PANE_SEPARATOR = "|"


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else ""


def vote_rows(store: Store, info: StudyInfo) -> list[dict[str, str]]:
    """All votes of a study as tidy rows, oldest first."""
    readers = {r.id: r.name for r in info.readers}
    cases = {c.id: c for c in info.cases}
    cands = {c.id: c for c in info.candidates}
    by_position = {c.position: c for c in info.candidates}
    with store.read() as s:
        rows = s.execute(select(Vote, Assignment).join(Assignment, Vote.assignment_id == Assignment.id)
                         .where(Assignment.study_id == info.id).order_by(Vote.voted_at, Vote.id)).all()
        uid_of = {v.id: v.uid for v, _ in rows}
    latest = {a.id: v.id for v, a in rows}  # ordered by time: the last one wins
    out = []
    for v, a in rows:
        case = cases[a.case_id]
        order = [by_position[int(p)] for p in v.pane_order.split(",")]
        out.append({
            "study": info.name, "study_fingerprint": info.fingerprint, "vote_uid": v.uid,
            "reader": readers[a.reader_id], "sequence": str(a.seq + 1), "case": case.key,
            "case_sha256": case.file_sha256,
            "disease_label": case.label or "", "qc_repeat": "yes" if a.repeat_of_id else "no",
            "pane_position": str(v.pane_index + 1), "pane_label": pane_label(v.pane_index, info.pane_labels),
            "chosen_variant": cands[v.candidate_id].spec.spec, "chosen_name": cands[v.candidate_id].display_name,
            "pane_variants": PANE_SEPARATOR.join(c.spec.spec for c in order),
            "confidence": "" if v.confidence is None else str(v.confidence),
            "rating": "" if v.rating is None else str(v.rating),
            "decision_ms": "" if v.decision_ms is None else str(v.decision_ms),
            "displayed_at": _iso(v.displayed_at), "voted_at": _iso(v.voted_at),
            "amendment": "yes" if v.amends_id else "no", "amends_vote_uid": uid_of.get(v.amends_id, ""),
            "latest": "yes" if latest[a.id] == v.id else "no", "origin": v.origin,
        })
    return out


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


RANDOM_ROW = "Overall (readers and cases random)"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"


def write_tables(stats: StudyStats, out: Path) -> None:
    wide = []
    for row in stats.rows:
        entry = {"reader": row.reader, "n": row.n}
        for name, cell in zip(stats.candidates, row.cells, strict=True):
            entry[name] = _num(cell.ratio)
        wide.append(entry)
    inf = stats.inference
    if inf is not None:
        wide.append({"reader": RANDOM_ROW, "n": stats.overall.n} | {s.name: _num(s.share) for s in inf.shares})
    wide.append({"reader": "Chance", "n": ""} | {name: _num(stats.chance_level) for name in stats.candidates})
    _write_csv(out / "table.csv", ["reader", "n", *stats.candidates], wide)
    chance = _num(stats.chance_level)
    long = [{"reader": row.reader, "candidate": name, "variant": spec, "count": cell.count, "n": cell.n,
             "ratio": _num(cell.ratio), "ci_low": _num(cell.ci_low), "ci_high": _num(cell.ci_high),
             "interval": "Wilson (votes independent)", "chance": chance}
            for row in stats.rows for name, spec, cell in zip(stats.candidates, stats.specs, row.cells, strict=True)]
    if inf is not None:
        long += [{"reader": RANDOM_ROW, "candidate": s.name, "variant": spec,
                  "count": stats.overall.cells[i].count, "n": stats.overall.n, "ratio": _num(s.share),
                  "ci_low": _num(s.ci_low), "ci_high": _num(s.ci_high), "interval": "reader x case bootstrap",
                  "chance": chance, "direction": s.direction or "", "p_vs_chance": _num(s.p_value)}
                 for i, (s, spec) in enumerate(zip(inf.shares, stats.specs, strict=True))]
    _write_csv(out / "table_long.csv", ["reader", "candidate", "variant", "count", "n", "ratio", "ci_low", "ci_high",
                                        "interval", "chance", "direction", "p_vs_chance"], long)
    (out / "table.md").write_text(f"# {stats.study}\n\n" + table_markdown(stats), encoding="utf-8")


def json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def plot_selection(stats: StudyStats, path: Path) -> None:
    """Grouped bars: selection ratio per candidate for each reader and Overall, 95% Wilson error bars."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    n_rows, n_cand = len(stats.rows), len(stats.candidates)
    width = 0.8 / n_cand
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * n_rows * max(1, n_cand) / 3 + 3), 4.5), dpi=120)
    x = np.arange(n_rows)
    for j, name in enumerate(stats.candidates):
        ratios = np.array([r.cells[j].ratio if r.cells[j].ratio is not None else np.nan for r in stats.rows])
        lo = np.array([r.cells[j].ci_low if r.cells[j].ci_low is not None else np.nan for r in stats.rows])
        hi = np.array([r.cells[j].ci_high if r.cells[j].ci_high is not None else np.nan for r in stats.rows])
        yerr = np.clip(np.nan_to_num(np.vstack([ratios - lo, hi - ratios])), 0, None)  # Wilson ends may round
        ax.bar(x + (j - (n_cand - 1) / 2) * width, np.nan_to_num(ratios), width, yerr=yerr, capsize=3, label=name)
    ax.axhline(1 / n_cand, color="gray", linestyle=":", linewidth=1, label="chance")
    ax.set_xticks(x, [f"{r.reader}\n(n={r.n})" for r in stats.rows])
    ax.set_ylabel("selection ratio")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{stats.study}: selections with 95% Wilson intervals")
    ax.legend(fontsize=8, ncols=min(n_cand + 1, 4), loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def mean_confidence(stats: StudyStats) -> dict[str, dict[str, float | int | None]]:
    """{reader or "Overall": {"all": mean, "n": rated votes, <candidate name>: mean of votes choosing it}}."""
    out: dict[str, dict[str, float | int | None]] = {}
    for row in stats.confidence:
        out[row.reader] = {"all": row.mean, "n": row.n} | dict(zip(stats.candidates, row.by_candidate, strict=True))
    return out


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    votes: int
    files: list[Path]


def export_study(store: Store, study: str | int, out: str | Path) -> ExportResult:
    info = load_study(store, study)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = vote_rows(store, info)
    _write_csv(out / "votes.csv", VOTE_COLUMNS, rows)
    if info.kind == "diagnosis":
        from core.study.diagnosis import export_diagnosis

        return ExportResult(out, len(rows), [out / "votes.csv", *export_diagnosis(store, info.id, out)])
    if info.kind == "authenticity":
        from core.study.authenticity import export_authenticity

        return ExportResult(out, len(rows), [out / "votes.csv", *export_authenticity(store, info.id, out)])
    stats = study_stats(store, info.id)
    write_tables(stats, out)
    summary = {"study": info.name, "fingerprint": info.fingerprint, "kind": info.kind, "design": info.design,
               "seed": info.seed, "presentation_size": info.presentation_size, "presentation": info.presentation,
               "ask_confidence": info.ask_confidence,
               "readers": [r.name for r in info.readers], "cases": len(info.cases),
               "candidates": [{"name": c.display_name, "variant": c.spec.spec, "model_sha256": c.model_sha256}
                              for c in info.candidates],
               "votes": len(rows), "exported_at": _iso(datetime.now(UTC)),
               "mean_confidence": mean_confidence(stats),
               "statistics": stats.to_dict(), "results": [{"what": k, "result": v} for k, v in statistics_items(stats)],
               "report": summary_text(stats)}
    (out / "summary.json").write_text(json.dumps(json_safe(summary), indent=2) + "\n", encoding="utf-8")
    plot_selection(stats, out / "selection.png")
    files = [out / n for n in ("votes.csv", "table.csv", "table_long.csv", "table.md", "summary.json",
                               "selection.png")]
    return ExportResult(out, len(rows), files)


# --------------------------------------------------------------------------- import


def _parse_time(text: str, what: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an ISO timestamp") from None
    if value.tzinfo is None:
        raise ValueError(f"{what} {text!r} has no time zone")
    return value


def _opt_int(text: str, what: str, lo: int, hi: int | None = None) -> int | None:
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number") from None
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{what} {value} is out of range")
    return value


def import_votes(store: Store, csv_path: str | Path, study: str | None = None) -> int:
    """Merge votes from another site's ``votes.csv``; all rows or none. Returns the number merged."""
    from core.study.reading import CONFIDENCE_RANGE

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise StudyDefinitionError(csv_path, "votes file not found")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = [(row, reader.line_num) for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise StudyDefinitionError(csv_path, f"not a readable CSV file ({exc})") from None
    required = [c for c in VOTE_COLUMNS if c not in ("chosen_name", "latest", "displayed_at", "confidence",
                                                     "decision_ms", "origin", "case_sha256",
                                                     "rating")]
    missing = [c for c in required if c not in header]
    if missing:
        raise StudyDefinitionError(csv_path, f"missing column(s): {', '.join(missing)}")
    if not rows:
        raise StudyDefinitionError(csv_path, "holds no votes")
    names = {r["study"] for r, _ in rows}
    if study is None:
        if len(names) != 1:
            raise StudyDefinitionError(csv_path, f"votes of several studies ({', '.join(sorted(names))}); "
                                                 "import one study at a time")
        study = names.pop()
    info = load_study(store, study)

    readers = {r.name: r for r in info.readers}
    specs = {c.spec.spec: c for c in info.candidates}
    by_position = {c.position: c for c in info.candidates}
    with store.read() as s:
        assignments = {(a.reader_id, a.seq): a for a in s.scalars(
            select(Assignment).where(Assignment.study_id == info.id))}
        existing = {uid: (a_id, v_id) for uid, a_id, v_id in s.execute(
            select(Vote.uid, Vote.assignment_id, Vote.id).join(Assignment).where(Assignment.study_id == info.id))}
    case_keys = {c.id: (c.key, c.file_sha256) for c in info.cases}

    problems: list[str] = []
    parsed: list[dict] = []
    seen: dict[str, int] = {}
    now = datetime.now(UTC)
    for row, line in rows:
        try:
            checked = _check_row(row, info, readers, specs, by_position, assignments, case_keys, CONFIDENCE_RANGE)
            import_rules.check_integers(checked)
            import_rules.check_confidence(checked["confidence"], info.ask_confidence)
            import_rules.check_times(checked["voted_at"], checked["displayed_at"], info.created_at, now)
            parsed.append(checked | {"line": line})
        except ValueError as exc:
            problems.append(f"row {line}: {exc}")
            continue
        uid = row["vote_uid"].strip()
        if uid in seen:
            problems.append(f"row {line}: duplicate vote {uid} (also row {seen[uid]})")
        elif uid in existing:
            problems.append(f"row {line}: vote {uid} is already in the database (imported before?)")
        seen.setdefault(uid, line)
    file_uids = {p["uid"]: p for p in parsed}
    for p in parsed:
        ref = p["amends_uid"]
        if ref and ref not in file_uids and ref not in existing:
            problems.append(f"row {p['line']}: amends vote {ref}, which is neither in the file nor the database")
        elif ref and (file_uids[ref]["assignment"].id if ref in file_uids else existing[ref][0]) != p["assignment"].id:
            problems.append(f"row {p['line']}: amends vote {ref} of a different case")
    problems += import_rules.first_vote_problems(parsed, {a_id for a_id, _ in existing.values()})
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        error = StudyDefinitionError(csv_path, f"{len(problems)} bad row(s), nothing imported: {shown}")
        error.problems = problems  # type: ignore[attr-defined]
        raise error

    origin = f"import:{csv_path.name}"
    try:
        import_rules.check_origin(origin)
    except ValueError as exc:
        raise StudyDefinitionError(csv_path, f"{exc}; nothing imported") from None
    try:
        _insert_votes(store, parsed, {uid: v_id for uid, (_, v_id) in existing.items()}, origin, csv_path)
    except IntegrityError:
        raise StudyDefinitionError(csv_path, "some of these votes are already in this database (in another "
                                             "study); nothing imported") from None
    return len(parsed)


def _insert_votes(store: Store, parsed: list[dict], ids: dict[str, int], origin: str, csv_path: Path) -> None:
    """Insert checked votes in one transaction, each after the vote it amends (so its id is known)."""
    with store.write() as s:
        pending = sorted(parsed, key=lambda p: (p["voted_at"], p["line"]))
        while pending:
            ready = [p for p in pending if not p["amends_uid"] or p["amends_uid"] in ids]
            if not ready:
                raise StudyDefinitionError(csv_path, "amendment references form a cycle; nothing imported")
            for p in ready:
                vote = Vote(uid=p["uid"], assignment_id=p["assignment"].id, candidate_id=p["candidate"].id,
                            pane_index=p["pane_index"], pane_order=p["assignment"].pane_order,
                            confidence=p["confidence"], rating=p["rating"], displayed_at=p["displayed_at"],
                            voted_at=p["voted_at"],
                            decision_ms=p["decision_ms"], amends_id=ids.get(p["amends_uid"]),
                            origin=p["origin"] if p["origin"].startswith("import:") else origin)
                s.add(vote)
                s.flush()
                ids[p["uid"]] = vote.id
            pending = [p for p in pending if p["uid"] not in ids]


def _check_row(row: dict, info: StudyInfo, readers: dict, specs: dict, by_position: dict, assignments: dict,
               case_keys: dict, confidence_range: tuple[int, int]) -> dict:
    """One vote row -> the values to insert; ValueError with the reason when it does not fit."""
    get = {k: (v or "").strip() for k, v in row.items() if k}
    import_rules.check_lengths(get)
    if get["study"] != info.name:
        raise ValueError(f"vote of study {get['study']!r}, not {info.name!r}")
    import_rules.check_fingerprint(get, info.fingerprint)
    if not get["vote_uid"]:
        raise ValueError("no vote_uid")
    reader = readers.get(get["reader"])
    if reader is None:
        raise ValueError(f"unknown reader {get['reader']!r}")
    seq = _opt_int(get["sequence"], "sequence", 1)
    assignment = assignments.get((reader.id, (seq or 0) - 1))
    if assignment is None:
        raise ValueError(f"reader {reader.name!r} has no query number {get['sequence']!r}")
    key, sha = case_keys[assignment.case_id]
    if get.get("case_sha256"):  # sites may name a case differently; its image content is what must agree
        if get["case_sha256"] != sha:
            raise ValueError(f"query {seq} of {reader.name!r} shows an image with another content hash than "
                             f"case {get['case']!r} of the file")
    elif key != get["case"]:
        raise ValueError(f"query {seq} of {reader.name!r} is case {key!r}, not {get['case']!r}")
    if get["qc_repeat"] not in ("yes", "no"):
        raise ValueError(f"qc_repeat flag must be yes or no, not {get['qc_repeat']!r}")
    if (get["qc_repeat"] == "yes") != (assignment.repeat_of_id is not None):
        raise ValueError("qc_repeat flag does not match the study's plan")
    panes = get["pane_variants"].split(PANE_SEPARATOR)
    unknown = [p for p in panes + [get["chosen_variant"]] if p not in specs]
    if unknown:
        raise ValueError(f"unknown candidate {unknown[0]!r}")
    stored = [by_position[int(p)].spec.spec for p in assignment.pane_order.split(",")]
    if panes != stored:
        raise ValueError(f"pane order {get['pane_variants']} differs from the order this reader was shown")
    position = _opt_int(get["pane_position"], "pane_position", 1, len(panes))
    if position is None or panes[position - 1] != get["chosen_variant"]:
        raise ValueError(f"pane {get['pane_position']} does not show {get['chosen_variant']}")
    if get["pane_label"] != pane_label(position - 1, info.pane_labels):
        raise ValueError(f"pane label {get['pane_label']!r} does not match position {position}")
    voted_at = _parse_time(get["voted_at"], "voted_at")
    if voted_at is None:
        raise ValueError("no voted_at")
    lo, hi = confidence_range
    return {
        "uid": get["vote_uid"], "assignment": assignment, "candidate": specs[get["chosen_variant"]],
        "pane_index": position - 1, "confidence": _opt_int(get.get("confidence", ""), "confidence", lo, hi),
        "displayed_at": _parse_time(get.get("displayed_at", ""), "displayed_at"), "voted_at": voted_at,
        "decision_ms": _opt_int(get.get("decision_ms", ""), "decision_ms", 0),
        "amends_uid": get.get("amends_vote_uid", ""), "origin": get.get("origin", ""),
        "rating": _rating(get.get("rating", ""), info),
    }


def _rating(text: str, info: StudyInfo) -> int | None:
    """A diagnosis study's rating on its scale, a real-or-synthetic study's judgement (0 real, 1 synthetic):
    required there; none for the preference kinds."""
    if info.kind == "authenticity":
        value = _opt_int(text, "rating", 0, 1)
        if value is None:
            raise ValueError("no judgement (rating 0 = real, 1 = synthetic)")
        return value
    if info.kind != "diagnosis":
        if text:
            raise ValueError("a rating in a preference study")
        return None
    lo, hi = RATING_SCALES[info.rating_scale or "5-point"]
    value = _opt_int(text, "rating", lo, hi)
    if value is None:
        raise ValueError("no rating (a diagnosis study rates every image)")
    return value
