"""``r2c-review train``, ``train-seg`` and ``evaluate``: producing and measuring the weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def pick_device(name: str | None):  # noqa: ANN201 - torch is imported lazily, keeping the CLI start fast
    from core.device import pick_device as pick

    return pick(name)


def _threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a restoration variant (resumable)")
    t.add_argument("--arch", choices=["operational", "convolutional", "convolutional-light", "task-unet"],
                   help="generator architecture (all recipes but tone)")
    t.add_argument("--tone-jitter", type=float, default=0.5,
                   help="tone recipe: probability of a natural tone variation of each clean film (default 0.5)")
    t.add_argument("--tone-thumbnail", type=int, default=0,
                   help="tone recipe: side of a film thumbnail the curve reads besides its quantiles (default 0: none)")
    t.add_argument("--tone-loss", default="l1", choices=["l1", "psnr"],
                   help="tone recipe: l1 to the clean film, or psnr: each film's PSNR in dB, averaged (default l1)")
    t.add_argument("--tone-clean-floor", type=float, default=3e-4,
                   help="tone recipe, psnr loss: MSE floor of the clean-film term (default 3e-4, i.e. 35 dB)")
    t.add_argument("--tone-identity-weight", type=float, default=1.0,
                   help="tone recipe: weight of the clean-film (keep good films) term (default 1)")
    t.add_argument("--tone-hidden", type=int, default=64, help="tone recipe: width of a new curve's MLP (default 64)")
    t.add_argument("--recipe", default="paper", choices=["paper", "tone", "paired", "paired-cyclegan"],
                   help="paper: the authors' unpaired CycleGAN objective unchanged; tone: fit the residual "
                        "restorers' global tone curve on whole films (RUN/model/tone-curve.safetensors, continued "
                        "when it exists; publish gives it to every variant); paired: the paired warm "
                        "start of the bundled recipe; paired-cyclegan: the authors' objective started from "
                        "--init-from plus --paired-weight x paired L1 (the bundled recipe's second stage)")
    t.add_argument("--q", type=int, default=None, help="Taylor order of the operational layers (1, 3, 5)")
    t.add_argument("--data", required=True, type=Path, help="folder of PNGs + labels.csv")
    t.add_argument("--run", required=True, type=Path, help="run folder (created; resumed when it exists)")
    t.add_argument("--epochs", type=int, default=2000, help="total epochs (authors: 2000)")
    t.add_argument("--decay-epoch", type=int, default=100, help="epoch where linear LR decay starts (authors: 100)")
    t.add_argument("--disc-q", type=int, default=None,
                   help="order of the operational discriminators (default: --q, as the authors do)")
    t.add_argument("--batch-size", type=int, default=1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-steps", type=int, default=None, help="stop after this many more steps (resume later)")
    t.add_argument("--checkpoint-every", type=int, default=250)
    t.add_argument("--sample-every", type=int, default=500)
    t.add_argument("--test-fraction", type=float, default=0.2)
    t.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 1e-3 for tone, else 2e-4 as the authors)")
    t.add_argument("--steps", type=int, default=20000,
                   help="paired: planned total steps (LR decays over the last quarter)")
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop (with a checkpoint) after this long; resume later")
    t.add_argument("--extra", type=Path, action="append", default=[],
                   help="paired: another folder of PNGs + labels.csv used as restoration targets only (repeatable)")
    t.add_argument("--init-from", type=Path, default=None, help="generator model file to start from")
    t.add_argument("--paired-weight", type=float, default=10.0,
                   help="paired-cyclegan: weight of L1(G(degraded B), B) next to the authors' terms")
    t.add_argument("--output-mode", choices=["absolute", "residual"], default=None,
                   help="absolute: the paper's output; residual: a correction relative to the input "
                        "(default: residual for the paired recipes, absolute for paper)")
    t.add_argument("--device", default=None)
    t.add_argument("--threads", type=int, default=None)
    t.set_defaults(handler=_train)

    s = sub.add_parser("train-seg", help="train the DenseNet-121 U-Net lung segmenter (resumable)")
    s.add_argument("--data", required=True, type=Path, help="folder with images/ and masks/")
    s.add_argument("--run", required=True, type=Path)
    s.add_argument("--epochs", type=int, default=80)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--max-steps", type=int, default=None)
    s.add_argument("--size", type=int, default=256, help="input size (square)")
    s.add_argument("--init-from", type=Path, default=None, help="segmenter model file to fine-tune from")
    s.add_argument("--exclude", default="v7covid", help="comma-separated datasets kept apart (other mask convention)")
    s.add_argument("--opacity-share", type=float, default=0.0,
                   help="share of training samples given synthetic lung opacities (default 0: off; see the "
                        "model card for what they did)")
    s.add_argument("--heart-including", default="",
                   help="comma-separated datasets whose masks take in the heart (e.g. gbcovid,v7covid): they train a "
                        "second output channel, and the shipped standard channel only where both conventions agree")
    s.add_argument("--remeasure", action="store_true",
                   help="train nothing: measure the finished --leave-out run in --run again with the current figures")
    s.add_argument("--leave-out", default=None,
                   help="leave-one-source-out: train without this source and measure on all of it (RUN/loso.json)")
    s.add_argument("--device", default=None)
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(handler=_train_seg)

    e = sub.add_parser("evaluate", help="evaluate restoration, classification and segmentation on held-out data")
    e.add_argument("--labeled", type=Path, help="folder of PNGs + labels.csv (restoration + classification)")
    e.add_argument("--masks", type=Path, help="folder with images/ and masks/ (segmentation)")
    e.add_argument("--variant", action="append", default=[], help="variant id (repeatable); default: all installed")
    e.add_argument("--weights", action="append", default=[], help="explicit generator model file (repeatable)")
    e.add_argument("--seg-weights", type=Path, default=None)
    e.add_argument("--plan", type=Path, default=None,
                   help="domains.json of the training run (held-out split); default: rebuilt from --seed")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--test-fraction", type=float, default=0.2)
    e.add_argument("--iterations", default="1,2,3", help="restoration passes to report, e.g. 1,2,3")
    e.add_argument("--all-images", action="store_true",
                   help="evaluate on every image of the folders, not only the held-out split (for external data)")
    e.add_argument("--external", type=Path, action="append", default=[],
                   help="labelled folder whose held-out patients are reported as another source (repeatable)")
    e.add_argument("--out", type=Path, default=Path("evaluation.json"))
    e.add_argument("--device", default=None)
    e.add_argument("--threads", type=int, default=None)
    e.set_defaults(handler=_evaluate)

    h = sub.add_parser("train-heads", help="measure (leave-one-source-out) and refit the generators' COVID-19 "
                                           "heads, calibrated; publish installs them")
    h.add_argument("--runs", type=Path, default=Path("runs"), help="folder holding <variant>/ runs (and tone/)")
    h.add_argument("--labeled", type=Path, required=True, help="labelled COVID-19/control folder")
    h.add_argument("--extra", type=Path, action="append", default=[],
                   help="more labelled folders (COVID-19 films, or NIH films counted as not COVID-19); repeatable")
    h.add_argument("--limit", type=int, default=300, help="films drawn from each extra folder (default 300)")
    h.add_argument("--variant", action="append", default=None, help="only these variants (repeatable)")
    h.add_argument("--threads", type=int, default=None)
    h.set_defaults(handler=_train_heads)

    p = sub.add_parser("publish", help="install trained runs as the bundled weights, with evaluation and manifests")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder holding <variant>/ and lung-seg/ runs")
    p.add_argument("--out", type=Path, default=Path("resources/models"))
    p.add_argument("--labeled", type=Path, default=None, help="labelled films (required unless --segmenter-only)")
    p.add_argument("--masks", type=Path, default=None)
    p.add_argument("--segmenter-only", action="store_true",
                   help="replace only the segmenter (from --seg-run, measured on --masks); the generators and "
                        "their recorded figures stay as they are")
    p.add_argument("--seg-run", type=Path, default=None,
                   help="segmenter run to install (default: RUNS/lung-seg), e.g. a fine-tune at a larger size")
    p.add_argument("--seg-loso", type=Path, action="append", default=[],
                   help="a finished `train-seg --leave-out` run whose figures go into the segmenter's record "
                        "(repeatable: one per left-out source)")
    p.add_argument("--validation", type=Path, default=None,
                   help="labelled folder whose held-out patients choose each variant's default passes "
                        "(e.g. ../shared/data/cxr_nih; never the test split)")
    p.add_argument("--external", type=Path, action="append", default=[],
                   help="labelled folder whose held-out patients are reported as films from another source "
                        "(repeatable)")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(handler=_publish)


def _train_heads(args: argparse.Namespace) -> int:
    from core.train.heads import run_head_fitting

    _threads(args)
    results = run_head_fitting(args.runs, args.labeled, args.extra, args.limit, args.variant)
    if not results:
        raise SystemExit(f"r2c-review train-heads: no generator runs in {args.runs} "
                         "(expected <runs>/<variant>/model/<variant>.safetensors)")
    for vid, r in results.items():
        low, high = r["out_of_source_ci95"]
        per = ", ".join(f"{s['source']} {s['auc']:.2f}" for s in r["per_source"])
        print(f"{vid}: out-of-source AUC {r['out_of_source_auc']:.3f} [{low:.3f}-{high:.3f}] ({per}); "
              f"temperature {r['temperature']:.2f}; calibration error {r['calibration_error']['before']:.3f} -> "
              f"{r['calibration_error']['after']:.3f}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from core.train.evaluate import format_report
    from core.train.publish import publish

    _threads(args)
    if args.segmenter_only:
        from core.train.publish import publish_segmenter

        if args.seg_run is None or args.masks is None:
            raise SystemExit("r2c-review publish --segmenter-only: give --seg-run and --masks")
        report = publish_segmenter(args.out, args.masks, args.seg_run, pick_device(args.device), args.seg_loso)
        print(format_report({"segmentation": report["segmentation"]}))
        print(f"segmenter installed into {args.out}; figures in {args.out / 'EVALUATION.md'}")
        return 0
    if args.labeled is None:
        raise SystemExit("r2c-review publish: --labeled is required (or use --segmenter-only)")
    report = publish(args.runs, args.out, args.labeled, args.masks, pick_device(args.device), seg_run=args.seg_run,
                     validation=args.validation, external=args.external, seg_loso=args.seg_loso)
    print(format_report(report))
    print(f"installed into {args.out}; figures in {args.out / 'EVALUATION.md'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from core.train.gan import GanConfig
    from core.train.gan_run import run_gan_training

    _threads(args)
    mode = args.output_mode or ("absolute" if args.recipe == "paper" else "residual")
    lr = args.lr if args.lr is not None else (1e-3 if args.recipe == "tone" else 2e-4)
    if args.recipe != "tone" and not args.arch:
        raise SystemExit(f"r2c-review train: --arch is required for --recipe {args.recipe}")
    if args.recipe == "tone":
        from core.train.tone import ToneConfig, run_tone_fitting

        record = run_tone_fitting(args.data, args.extra, args.run,
                                  ToneConfig(steps=args.steps, lr=lr, seed=args.seed, jitter=args.tone_jitter,
                                             thumb=args.tone_thumbnail, loss=args.tone_loss,
                                             clean_floor=args.tone_clean_floor,
                                             identity_weight=args.tone_identity_weight, hidden=args.tone_hidden),
                                  args.test_fraction)
        print(f"{args.run}: tone curve after {record['steps']} steps on {record['films']} films; "
              f"loss {record['loss_per_100_steps'][-1] if record['loss_per_100_steps'] else float('nan'):.4f}")
        return 0
    max_seconds = args.max_minutes * 60 if args.max_minutes else None
    init_from = str(args.init_from) if args.init_from else None
    if args.recipe == "paired":
        from core.train.paired import PairedConfig
        from core.train.paired_run import run_paired_training

        pconfig = PairedConfig(arch=args.arch, q=args.q, steps=args.steps, lr=lr, seed=args.seed, output_mode=mode,
                               checkpoint_every=args.checkpoint_every, init_from=init_from)
        ptrainer = run_paired_training(pconfig, args.data, args.run, pick_device(args.device), extra=args.extra,
                                       max_steps=args.max_steps, max_seconds=max_seconds,
                                       test_fraction=args.test_fraction)
        print(f"{args.run}: step {ptrainer.step} of {pconfig.steps}; model file in {args.run / 'model'}")
        return 0
    if args.arch == "task-unet":
        raise SystemExit("r2c-review train: Task-GAN trains with --recipe paired (it has no CycleGAN objective)")
    config = GanConfig(arch=args.arch, q=args.q, epochs=args.epochs, decay_epoch=args.decay_epoch,
                       batch_size=args.batch_size, seed=args.seed, checkpoint_every=args.checkpoint_every,
                       lr=lr, sample_every=args.sample_every, disc_q=args.disc_q, recipe=args.recipe,
                       output_mode=mode,
                       paired_weight=args.paired_weight if args.recipe == "paired-cyclegan" else 0.0,
                       init_from=init_from, balance_upsampling=args.recipe == "paired-cyclegan")
    trainer = run_gan_training(config, args.data, args.run, pick_device(args.device), max_steps=args.max_steps,
                               max_seconds=max_seconds, test_fraction=args.test_fraction)
    print(f"{args.run}: step {trainer.step} of {trainer.total_steps}; model file in {args.run / 'model'}")
    return 0


def _train_seg(args: argparse.Namespace) -> int:
    from core.train.seg import SegConfig, run_seg_training

    _threads(args)
    if args.remeasure:
        from core.train.seg import remeasure_fold

        r = remeasure_fold(args.run, args.data, pick_device(args.device))
        fair = f", agreed-region Dice {r['agreed_dice']:.4f}" if "agreed_dice" in r else ""
        print(f"{args.run}: {r.get('left_out')} left out, n={r['n']}: Dice {r['dice']:.4f}, precision "
              f"{r['precision']:.4f}, recall {r['recall']:.4f}, area ratio {r['area_ratio']:.3f}{fair}")
        return 0
    config = SegConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, size=args.size,
                       exclude=tuple(x for x in args.exclude.split(",") if x),
                       init_from=str(args.init_from) if args.init_from else None, leave_out=args.leave_out,
                       opacity_share=args.opacity_share,
                       heart_including=tuple(x for x in args.heart_including.split(",") if x))
    trainer = run_seg_training(config, args.data, args.run, pick_device(args.device), max_steps=args.max_steps)
    print(f"{args.run}: step {trainer.step} of {trainer.total_steps}; model file in {args.run / 'model'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from core.train.evaluate import evaluate_all

    _threads(args)
    iterations = [int(x) for x in args.iterations.split(",") if x]
    report = evaluate_all(
        labeled=args.labeled, masks=args.masks, variants=args.variant, weights=args.weights,
        seg_weights=args.seg_weights, plan_path=args.plan, seed=args.seed, test_fraction=args.test_fraction,
        iterations=iterations, all_images=args.all_images, device=pick_device(args.device), external=args.external,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    from core.train.evaluate import format_report

    print(format_report(report))
    print(f"written: {args.out}")
    return 0
