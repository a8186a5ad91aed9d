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
    t = sub.add_parser("train", help="train an R2C-GAN variant (unpaired, resumable)")
    t.add_argument("--arch", required=True, choices=["operational", "convolutional", "convolutional-light"])
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
    e.add_argument("--out", type=Path, default=Path("evaluation.json"))
    e.add_argument("--device", default=None)
    e.add_argument("--threads", type=int, default=None)
    e.set_defaults(handler=_evaluate)

    p = sub.add_parser("publish", help="install trained runs as the bundled weights, with evaluation and manifests")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder holding <variant>/ and lung-seg/ runs")
    p.add_argument("--out", type=Path, default=Path("resources/models"))
    p.add_argument("--labeled", type=Path, required=True)
    p.add_argument("--masks", type=Path, default=None)
    p.add_argument("--seg-run", type=Path, default=None,
                   help="segmenter run to install (default: RUNS/lung-seg), e.g. a fine-tune at a larger size")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(handler=_publish)


def _publish(args: argparse.Namespace) -> int:
    from core.train.evaluate import format_report
    from core.train.publish import publish

    _threads(args)
    report = publish(args.runs, args.out, args.labeled, args.masks, pick_device(args.device), seg_run=args.seg_run)
    print(format_report(report))
    print(f"installed into {args.out}; figures in {args.out / 'EVALUATION.md'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from core.train.gan import GanConfig
    from core.train.gan_run import run_gan_training

    _threads(args)
    config = GanConfig(arch=args.arch, q=args.q, epochs=args.epochs, decay_epoch=args.decay_epoch,
                       batch_size=args.batch_size, seed=args.seed, checkpoint_every=args.checkpoint_every,
                       sample_every=args.sample_every, disc_q=args.disc_q)
    trainer = run_gan_training(config, args.data, args.run, pick_device(args.device), max_steps=args.max_steps,
                               test_fraction=args.test_fraction)
    print(f"{args.run}: step {trainer.step} of {trainer.total_steps}; model file in {args.run / 'model'}")
    return 0


def _train_seg(args: argparse.Namespace) -> int:
    from core.train.seg import SegConfig, run_seg_training

    _threads(args)
    config = SegConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, size=args.size,
                       exclude=tuple(x for x in args.exclude.split(",") if x),
                       init_from=str(args.init_from) if args.init_from else None)
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
        iterations=iterations, all_images=args.all_images, device=pick_device(args.device),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    from core.train.evaluate import format_report

    print(format_report(report))
    print(f"written: {args.out}")
    return 0
