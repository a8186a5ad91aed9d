"""The two unpaired training domains, built reproducibly from unlabelled-quality data.

Recipe (documented in the model cards):

1. Split patients into train and test (``split_by_patient``; ~20 % test, stratified by
   label and source).
2. Score every training image with no-reference measures (``core.quality``: noise,
   sharpness, contrast, clipping) and rank them.
3. The better half is the *clean pool*, the rest is *real poor quality*.
4. Split the clean pool by patient: 60 % becomes domain B (high quality), 40 % is held
   apart and degraded on the fly with a blind blend of artifacts (``core.degrade``).
5. Domain A (poor quality) = real poor-quality images + degraded held-apart images.

B and the degraded part of A never share a patient, so the generator never sees the
clean version of an image it must restore. Test images are scored against the training
median: those above it are the *clean test* images used for the full-reference metrics.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.quality import QualityMeasures, measure, quality_scores
from core.train.data import LabeledImage, read_gray, split_by_patient

PLAN_VERSION = 1


@dataclass
class DomainPlan:
    seed: int
    test_fraction: float
    train_poor: list[str] = field(default_factory=list)  # file names: real poor quality -> domain A
    train_degraded: list[str] = field(default_factory=list)  # clean, degraded on the fly -> domain A
    train_clean: list[str] = field(default_factory=list)  # domain B
    test: list[str] = field(default_factory=list)
    test_clean: list[str] = field(default_factory=list)  # subset of test above the training median
    quality: dict[str, dict[str, float]] = field(default_factory=dict)  # file -> measures + score
    version: int = PLAN_VERSION

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> DomainPlan:
        return cls(**json.loads(path.read_text()))

    def summary(self) -> str:
        return (f"domain A: {len(self.train_poor)} real poor + {len(self.train_degraded)} degraded clean; "
                f"domain B: {len(self.train_clean)} clean; test: {len(self.test)} "
                f"({len(self.test_clean)} clean)")


def build_domain_plan(items: list[LabeledImage], seed: int = 0, test_fraction: float = 0.2,
                      images: dict[str, np.ndarray] | None = None) -> DomainPlan:
    """Split, score and assign every image; ``images`` (file -> display image) avoids re-reading."""
    train, test = split_by_patient(items, test_fraction, seed)
    measures: dict[str, QualityMeasures] = {}
    for it in items:
        img = images[it.name] if images is not None else read_gray(it.path)
        measures[it.name] = measure(img)
    train_scores = quality_scores([measures[it.name] for it in train])
    all_scores = quality_scores([measures[it.name] for it in items])
    order = np.argsort(-train_scores, kind="stable")
    half = len(train) // 2
    clean = [train[i] for i in order[:half]]
    poor = [train[i] for i in order[half:]]

    rng = np.random.default_rng(seed)
    patients = sorted({it.patient_key for it in clean})
    rng.shuffle(patients)
    held_apart = set(patients[: round(0.4 * len(patients))])
    plan = DomainPlan(seed=seed, test_fraction=test_fraction)
    plan.train_poor = sorted(it.name for it in poor)
    plan.train_degraded = sorted(it.name for it in clean if it.patient_key in held_apart)
    plan.train_clean = sorted(it.name for it in clean if it.patient_key not in held_apart)
    plan.test = sorted(it.name for it in test)
    # A test image is "clean" when it would rank in the clean half of the training images.
    score_of = {it.name: float(s) for it, s in zip(items, all_scores, strict=True)}
    threshold = float(np.median([score_of[it.name] for it in train]))
    plan.test_clean = sorted(it.name for it in test if score_of[it.name] >= threshold)
    plan.quality = {name: {**m.as_dict(), "score": score_of[name]} for name, m in measures.items()}
    return plan
