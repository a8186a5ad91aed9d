"""``r2c-review mrmc analyze``: Obuchowski-Rockette MRMC ROC analysis of any ratings table."""

from __future__ import annotations

import argparse
import json

from core.mrmc.covariance import COVARIANCE_METHODS


def register(sub: argparse._SubParsersAction) -> None:
    mrmc = sub.add_parser("mrmc", help="multi-reader multi-case ROC analysis (Obuchowski-Rockette)")
    cmds = mrmc.add_subparsers(dest="mrmc_command", metavar="SUBCOMMAND")
    mrmc.set_defaults(handler=lambda _args: (mrmc.print_help(), 2)[1])
    p = cmds.add_parser("analyze", help="analyse a CSV with the columns reader,treatment,case,truth,rating "
                                        "(truth 1 = diseased; fully crossed)")
    p.add_argument("ratings", help="ratings CSV")
    p.add_argument("--cov", choices=COVARIANCE_METHODS, default="jackknife",
                   help="covariance of the AUCs over cases (default jackknife)")
    p.add_argument("--readers", choices=("random", "fixed"), default="random")
    p.add_argument("--cases", choices=("random", "fixed"), default="random")
    p.add_argument("--conf-level", type=float, default=0.95)
    p.add_argument("--json", action="store_true", help="print one JSON object (auc, mean_auc, difference, "
                                                        "covariance)")
    p.add_argument("--plot", help="also write the empirical ROC curves to this image file (PNG/PDF/SVG)")
    p.set_defaults(handler=_analyze)

    p = cmds.add_parser("plan", help="readers and cases needed for a target AUC difference, from a pilot's "
                                     "ratings (Hillis, Obuchowski & Berbaum 2011)")
    p.add_argument("ratings", help="pilot ratings CSV (reader,treatment,case,truth,rating)")
    p.add_argument("--delta", type=float, required=True, help="AUC difference to detect, e.g. 0.05")
    p.add_argument("--power", type=float, default=0.8, help="target power (default 0.8)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--readers", default="3,4,5,6,8,10", help="reader counts to plan for (comma-separated)")
    p.add_argument("--cov", choices=COVARIANCE_METHODS, default="jackknife")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_plan)


def _analyze(args: argparse.Namespace) -> int:
    from core.errors import R2CError
    from core.mrmc import analyze, load_ratings_csv
    from core.mrmc.plot import plot_roc
    from core.mrmc.report import result_json, result_text

    table = load_ratings_csv(args.ratings)
    if not 0 < args.conf_level < 1:
        raise R2CError(None, f"--conf-level must be between 0 and 1, not {args.conf_level}")
    try:
        result = analyze(table, args.cov, args.readers, args.cases, args.conf_level)
    except ValueError as exc:
        raise R2CError(args.ratings, str(exc)) from None
    print(json.dumps(result_json(result), indent=2) if args.json else result_text(result))
    if args.plot:
        plot_roc(table, args.plot)
    return 0


def _plan(args: argparse.Namespace) -> int:
    from core.errors import R2CError
    from core.mrmc import analyze, load_ratings_csv
    from core.mrmc.power import PilotComponents, smallest_cases

    table = load_ratings_csv(args.ratings)
    try:
        readers = [int(r) for r in args.readers.split(",")]
    except ValueError:
        raise R2CError(None, f"--readers must be whole numbers separated by commas, not {args.readers!r}") from None
    if not 0 < args.delta < 1 or not 0 < args.power < 1 or not 0 < args.alpha < 1 or min(readers) < 2:
        raise R2CError(None, "--delta, --power and --alpha must be between 0 and 1, and readers at least 2")
    try:
        pilot = PilotComponents.from_result(analyze(table, args.cov))
    except ValueError as exc:
        raise R2CError(args.ratings, str(exc)) from None
    rows = []
    for r in readers:
        point = smallest_cases(pilot, args.delta, r, args.power, args.alpha)
        rows.append({"readers": r, "cases": point.cases if point else None,
                     "power": point.power if point else None, "ddf": point.ddf if point else None})
    if args.json:
        print(json.dumps({"delta": args.delta, "target_power": args.power, "alpha": args.alpha,
                          "pilot": vars(pilot), "plan": rows}, indent=2))
        return 0
    print(f"Cases needed to detect an AUC difference of {args.delta:g} with power {args.power:g} (alpha "
          f"{args.alpha:g}), readers and cases random; pilot: {pilot.cases} cases, var_TR {pilot.var_tr:.3g}, "
          f"var_error {pilot.var_error:.3g}")
    for row in rows:
        cases = f"{row['cases']} cases (power {row['power']:.3f})" if row["cases"] else \
            "not reachable with this many readers (reader variability dominates)"
        print(f"  {row['readers']} readers: {cases}")
    return 0
