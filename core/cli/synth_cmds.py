"""``r2c-review train-pix2pix``, ``synthesize`` and ``train-classifier``: synthetic COVID-19 films
(pix2pix, Liang et al. 2020) and the augmentation experiment."""

from __future__ import annotations

import argparse
from pathlib import Path


def _device(args: argparse.Namespace):  # noqa: ANN202 - torch is imported lazily, keeping the CLI start fast
    from core.device import pick_device

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    return pick_device(args.device)


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train-pix2pix", help="train the pix2pix synthesizer of COVID-19-like films (resumable)")
    t.add_argument("--data", required=True, type=Path,
                   help="folder holding cxr_labeled/, cxr_nih/, cxr_covid_extra/ (e.g. ../shared/data)")
    t.add_argument("--run", required=True, type=Path, help="run folder (created; resumed when it exists)")
    t.add_argument("--epochs", type=int, default=100,
                   help="planned epochs (paper: 100); LR decays over the second half")
    t.add_argument("--size", type=int, default=224, help="film side in px (paper: 224; divisible by 32)")
    t.add_argument("--base", type=int, default=64, help="U-Net width of the first block (pix2pix: 64)")
    t.add_argument("--batch-size", type=int, default=1)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--test-fraction", type=float, default=0.15, help="share of patients held out")
    t.add_argument("--checkpoint-every", type=int, default=200)
    t.add_argument("--max-steps", type=int, default=None, help="stop after this many more steps (resume later)")
    t.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    t.add_argument("--device", default=None)
    t.add_argument("--threads", type=int, default=None)
    t.set_defaults(handler=_train_pix2pix)

    p = sub.add_parser("publish-pix2pix", help="install a train-pix2pix run's synthesizer (float16, manifest with "
                                               "sha256 and held-out figures) into resources/models")
    p.add_argument("--run", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path, help="the folder the run was trained on (held-out figures)")
    p.add_argument("--out", type=Path, default=Path("resources/models"))
    p.add_argument("--no-montage", action="store_true", help="do not write pix2pix-montage.png")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(handler=_publish_pix2pix)

    s = sub.add_parser("synthesize", help="synthetic COVID-19-like films from normal films (research only; "
                                          "every output is marked synthetic)")
    s.add_argument("inputs", nargs="+", type=Path, help="normal chest films (DICOM, PNG, JPEG, TIFF) or folders")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--weights", type=Path, default=None, help="synthesizer model file (default: the shipped one)")
    s.add_argument("--format", default="png", choices=["png", "dicom"])
    s.add_argument("--device", default=None)
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(handler=_synthesize)

    c = sub.add_parser("train-classifier", help="the augmentation experiment: a normal / COVID-19 / pneumonia "
                                                "classifier with and without synthetic balancing")
    c.add_argument("--data", required=True, type=Path, help="folder holding cxr_labeled/, cxr_nih/, cxr_covid_extra/")
    c.add_argument("--run", required=True, type=Path, help="run folder (results.json, results.md)")
    c.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet18"],
                   help="resnet50 as the paper; resnet18 is a CPU deviation")
    c.add_argument("--synthetic", default="both", choices=["none", "balanced", "both"],
                   help="train without synthetic films, with synthetic COVID-19 films balancing the classes, or both")
    c.add_argument("--weights", type=Path, default=None, help="synthesizer model file (default: the shipped one)")
    c.add_argument("--epochs", type=int, default=20)
    c.add_argument("--size", type=int, default=224)
    c.add_argument("--batch-size", type=int, default=16)
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--test-fraction", type=float, default=0.15,
                   help="share of patients held out (same split as train-pix2pix with the same seed)")
    c.add_argument("--max-films", type=int, default=None, help="use at most this many training films (smoke runs)")
    c.add_argument("--device", default=None)
    c.add_argument("--threads", type=int, default=None)
    c.set_defaults(handler=_train_classifier)


def _train_pix2pix(args: argparse.Namespace) -> int:
    from core.train.pix2pix import Pix2PixConfig, run_pix2pix_training

    device = _device(args)
    config = Pix2PixConfig(size=args.size, base=args.base, batch_size=args.batch_size, epochs=args.epochs, lr=args.lr,
                           seed=args.seed, test_fraction=args.test_fraction, checkpoint_every=args.checkpoint_every)
    trainer = run_pix2pix_training(config, args.data, args.run, device, max_steps=args.max_steps,
                                   max_seconds=args.max_minutes * 60 if args.max_minutes else None)
    print(f"{args.run}: step {trainer.step} of {trainer.total_steps} "
          f"({trainer.step / trainer.steps_per_epoch:.2f} epochs, {trainer.seconds / 60:.1f} min); "
          f"model file in {args.run / 'model'}")
    return 0


def _publish_pix2pix(args: argparse.Namespace) -> int:
    from core.train.pix2pix import publish_synthesizer

    manifest = publish_synthesizer(args.run, args.data, args.out, _device(args), montage=not args.no_montage)
    print(f"installed {args.out / 'pix2pix-covid.safetensors'} (float16, sha256 {manifest.sha256[:12]}…): "
          f"step {manifest.provenance['step']}, held-out {manifest.provenance['evaluation']}")
    return 0


def _synthesize(args: argparse.Namespace) -> int:
    from core.synthesize import synthesize_files

    written = synthesize_files(args.inputs, args.out, weights=args.weights, fmt=args.format, device=_device(args))
    for path in written:
        print(path)
    print(f"{len(written)} synthetic film(s) written to {args.out} (each marked SYNTHETIC; research use only)")
    return 0


def _train_classifier(args: argparse.Namespace) -> int:
    from core.train.classifier import ClassifierConfig, run_experiment

    config = ClassifierConfig(backbone=args.backbone, epochs=args.epochs, size=args.size, batch_size=args.batch_size,
                              lr=args.lr, seed=args.seed, test_fraction=args.test_fraction, max_films=args.max_films)
    arms = ["none", "balanced"] if args.synthetic == "both" else [args.synthetic]
    result = run_experiment(config, args.data, args.run, _device(args), arms=arms, weights=args.weights)
    print(result["markdown"])
    print(f"written: {args.run / 'results.json'}, {args.run / 'results.md'}")
    return 0
