"""Matched presentation of every candidate, an on-disk rendition cache, and precompute.

Matched presentation: the original must not stand out by resolution or look. Generators
work at 256 x 256, so *every* candidate takes the same path:

    display image --(core.preprocess.to_square: 256 x 256, as every model input)-->
    candidate transform (identity / CLAHE / histogram eq. / generator passes) -->
    (to_presentation: the same bicubic upsampling to the study's size, aspect ratio restored) -->
    8-bit, full-range window  [--> lung mask on that picture, overlaid identically]

so all panes of a case have the same matrix size, bit depth, window and resampling history.
That is the "paper" presentation; a "native" study (``core.study.presentation``) replaces the
upsampling step by guided upsampling of each candidate's change to the film's own pixels and
the same area downsampling to the pane size, again for the original and every candidate alike.

Renditions are cached as PNG files named by a sha256 key over everything that determines
their pixels (input file hash, candidate spec, model hash, presentation settings,
RENDER_VERSION). A changed model or setting changes the key, so a stale picture is never
shown; file names and files carry no variant names or metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from core.enhance import clahe, histeq
from core.errors import R2CError, StudyStateError
from core.preprocess import MODEL_INPUT, to_square
from core.study import images
from core.study.manage import CandidateInfo, CaseInfo, StudyInfo, load_study
from core.study.presentation import AUTHENTICITY_GRID, authenticity_pane, native_pane
from core.study.store import Store

if TYPE_CHECKING:
    from core.restore import Restorer

# torch (core.restore, core.segment) is imported only when a rendition must be computed, so that
# a reading session over a precomputed study starts fast.
RENDER_VERSION = 1  # bump when the rendering path changes, so old cache entries are not reused
OVERLAY_OPACITY = 0.35
Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


class Segmenter(Protocol):
    """What rendering needs of a lung segmenter (core.segment.LungSegmenter fits)."""

    def segment_many(self, images: list[np.ndarray]) -> list: ...


def matched_input(display: np.ndarray, size: int = MODEL_INPUT) -> np.ndarray:
    """Display image -> size x size float32 in [0, 1], resized exactly as the generators' input."""
    return to_square(display, size)


def presentation_shape(source_hw: tuple[int, int], size: int) -> tuple[int, int]:
    """(height, width) of a pane: the longer side is ``size``, the source's aspect ratio kept."""
    h, w = source_hw
    if h >= w:
        return size, max(1, round(size * w / h))
    return max(1, round(size * h / w)), size


def to_presentation(image: np.ndarray, source_hw: tuple[int, int], size: int) -> np.ndarray:
    """A 256 x 256 candidate image -> the pane picture: bicubic to the pane shape, 8-bit, full window."""
    ph, pw = presentation_shape(source_hw, size)
    up = cv2.resize(np.asarray(image, np.float32), (pw, ph), interpolation=cv2.INTER_CUBIC)
    return np.round(np.clip(up, 0.0, 1.0) * 255.0).astype(np.uint8)


def apply_candidate(base: np.ndarray, candidate: CandidateInfo) -> np.ndarray:
    """The non-learned candidates on the 256 x 256 matched input (generators run in batches)."""
    spec = candidate.spec
    if spec.kind == "original":
        return base
    if spec.spec == "histeq":
        return histeq(base)
    if spec.spec.startswith("clahe"):
        return clahe(base, spec.clip_limit or 2.0)
    raise ValueError(f"{spec.spec} is not a classic candidate")


def rendition_key(study: StudyInfo, case: CaseInfo, candidate: CandidateInfo) -> str:
    """Opaque cache key over everything that determines the rendition's pixels."""
    payload = {
        "v": RENDER_VERSION, "file": case.file_sha256, "spec": candidate.spec.spec,
        "model": candidate.model_sha256, "size": study.presentation_size, "kind": study.kind,
        "model_input": MODEL_INPUT,
    }
    if study.kind == "segmentation":
        payload |= {"segmenter": study.segmenter_sha256, "opacity": OVERLAY_OPACITY}
    if study.presentation != "paper":  # only then, so that paper studies keep their cached renditions
        payload["presentation"] = study.presentation
    if study.kind == "authenticity":
        payload["grid"] = AUTHENTICITY_GRID
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class RenditionCache:
    """PNG files under ``root``, named by key; written atomically (temp file, fsync, rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> np.ndarray | None:
        """The cached picture (gray H x W or RGB H x W x 3, uint8), or None if absent or unreadable."""
        path = self.path(key)
        if not path.is_file():
            return None
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            return None
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image

    def put(self, key: str, image: np.ndarray) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        ok, data = cv2.imencode(".png", pixels)
        if not ok:
            raise StudyStateError(path, "cannot encode rendition as PNG")
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def put_case(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Write one case's renditions in a random order and give them one modification time.

        Written in candidate order, the original came first in every case and file times told
        which pane was which; now neither order nor times say anything. This protects against
        casual inspection only (file sizes still differ by content): the database holds the
        assignment, and the cache is not meant to be opened by readers.
        """
        items = list(items)
        random.SystemRandom().shuffle(items)
        for key, image in items:
            self.put(key, image)
        stamp = time.time_ns()
        for key, _ in items:
            os.utime(self.path(key), ns=(stamp, stamp))


@dataclass
class PrecomputeResult:
    total: int
    cached_before: int
    computed: int
    cancelled: bool = False

    @property
    def missing(self) -> int:
        return self.total - self.cached_before - self.computed


class Renderer:
    """Makes and caches the pane pictures of a study; loads models lazily, on first need.

    Thread-safe enough for one GUI prefetch thread beside the main thread: the restorer and
    segmenter guard their models with locks, and cache writes are atomic.
    """

    def __init__(self, study: StudyInfo, cache: RenditionCache, restorer: Restorer | None = None,
                 segmenter: Segmenter | None = None, batch_size: int | None = None,
                 loader: Callable[[Path], np.ndarray] | None = None) -> None:
        self.study = study
        self.cache = cache
        self.batch_size = batch_size
        self._restorer = restorer
        self._segmenter = segmenter
        self._loader = loader
        self._lock = threading.Lock()
        self._checked: set[str] = set()

    # ----------------------------------------------------------------- models, pinned

    def _restorer_for(self, candidate: CandidateInfo) -> Restorer:
        from core.restore import Restorer
        from core.weights.model_file import sha256_of

        with self._lock:
            if self._restorer is None:
                self._restorer = Restorer()
            restorer = self._restorer
        if candidate.spec.spec not in self._checked:
            loaded = restorer.generator(candidate.spec.variant_id)
            actual = loaded.manifest.sha256 or sha256_of(loaded.path)
            if actual != candidate.model_sha256:
                raise StudyStateError(loaded.path, f"these {candidate.display_name} weights (sha256 {actual[:12]}…) "
                                                   f"are not the ones study {self.study.name!r} was created with "
                                                   f"({(candidate.model_sha256 or '?')[:12]}…); install those again "
                                                   "or create a new study")
            self._checked.add(candidate.spec.spec)
        return restorer

    def _segmenter_checked(self) -> Segmenter:
        with self._lock:
            if self._segmenter is None:
                from core.segment import LungSegmenter

                self._segmenter = LungSegmenter()
            segmenter = self._segmenter
        manifest = getattr(segmenter, "manifest", None)
        actual = getattr(manifest, "sha256", None)
        if actual is not None and actual != self.study.segmenter_sha256:
            raise StudyStateError("lung segmenter", f"installed weights (sha256 {actual[:12]}…) are not the ones study "
                                                    f"{self.study.name!r} was created with")
        return segmenter

    # ----------------------------------------------------------------- rendering

    def key(self, case: CaseInfo, candidate: CandidateInfo) -> str:
        return rendition_key(self.study, case, candidate)

    def _load(self, case: CaseInfo) -> np.ndarray:
        loader = self._loader or images.load_display
        if not case.path.is_file():
            raise StudyStateError(case.path, f"image of case {case.key!r} is missing")
        return loader(case.path)

    def render(self, cases: Sequence[CaseInfo], candidates: Sequence[CandidateInfo] | None = None,
               progress: Callable[[int], None] | None = None) -> int:
        """Render and cache the given renditions that are not cached yet; returns how many it made."""
        candidates = list(candidates if candidates is not None else self.study.candidates)
        todo = {c.id: [k for k in candidates if not self.cache.has(self.key(c, k))] for c in cases}
        cases = [c for c in cases if todo[c.id]]
        if not cases:
            return 0
        displays = [self._load(c) for c in cases]
        grid = AUTHENTICITY_GRID if self.study.kind == "authenticity" else MODEL_INPUT
        bases = [matched_input(d, grid) for d in displays]
        made = 0
        per_case: dict[int, list[tuple[str, np.ndarray]]] = {i: [] for i in range(len(cases))}
        for cand in candidates:
            idx = [i for i, c in enumerate(cases) if cand in todo[c.id]]
            if not idx:
                continue
            if cand.spec.kind == "generator":
                restorer = self._restorer_for(cand)
                outs = [r.final for r in restorer.restore_many([bases[i] for i in idx], cand.spec.variant_id,
                                                               cand.spec.iterations, batch_size=self.batch_size)]
            else:
                outs = [apply_candidate(bases[i], cand) for i in idx]
            pictures = [self.pane(displays[i], bases[i], o) for o, i in zip(outs, idx, strict=True)]
            if self.study.kind == "segmentation":
                pictures = self._overlay(pictures)
            for i, picture in zip(idx, pictures, strict=True):
                per_case[i].append((self.key(cases[i], cand), picture))
            made += len(idx)
            if progress:
                progress(len(idx))
        for items in per_case.values():  # all of a case's panes at once: random order, one time (blinding)
            self.cache.put_case(items)
        return made

    def pane(self, display: np.ndarray, base: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        """A candidate's 256-px result -> its pane picture, by the study's presentation (same for every pane)."""
        if self.study.kind == "authenticity":  # every film, real or synthetic, on the same square grid
            return authenticity_pane(candidate, self.study.presentation_size)
        if self.study.presentation == "native":
            return native_pane(display, base, candidate, self.study.presentation_size)
        return to_presentation(candidate, display.shape, self.study.presentation_size)

    def _overlay(self, pictures: list[np.ndarray]) -> list[np.ndarray]:
        """Lung mask computed on each pane's own picture, drawn identically on all."""
        from core.segment import overlay

        grays = [p.astype(np.float32) / 255.0 for p in pictures]
        segs = self._segmenter_checked().segment_many(grays)
        return [overlay(g, s.mask, OVERLAY_OPACITY) for g, s in zip(grays, segs, strict=True)]

    def get(self, case: CaseInfo, candidate: CandidateInfo) -> np.ndarray:
        """One pane picture: from the cache, or rendered now (with its case's siblings) if missing."""
        key = self.key(case, candidate)
        picture = self.cache.get(key)
        if picture is None:
            self.cache.path(key).unlink(missing_ok=True)  # unreadable (damaged on disk): make it again
            try:
                self.render([case])
            except R2CError as exc:
                raise StudyStateError(exc.source, f"rendition not precomputed and cannot be made here: "
                                                  f"{exc.reason}") from None
            picture = self.cache.get(key)
            if picture is None:
                raise StudyStateError(self.cache.path(key), "rendition could not be written to the cache")
        return picture

    def cached_count(self) -> tuple[int, int]:
        """(cached, total) renditions of the study."""
        keys = [self.key(c, k) for c in self.study.cases for k in self.study.candidates]
        return sum(self.cache.has(k) for k in keys), len(keys)


def rendition_status(store: Store, study: str | int) -> tuple[int, int]:
    """(cached, total) renditions of a study on this machine: reading can start when they are equal."""
    info = load_study(store, study)
    return Renderer(info, RenditionCache(store.cache_dir)).cached_count()


def precompute(store: Store, study: str | int, renderer: Renderer | None = None, progress: Progress | None = None,
               cancelled: Cancelled | None = None, chunk: int = 8) -> PrecomputeResult:
    """Render every rendition any reader will see; resumable (cached ones are skipped).

    ``progress(done, total)`` counts renditions; ``cancelled()`` is polled between chunks
    of cases, and what was finished stays cached.
    """
    info = load_study(store, study)
    renderer = renderer or Renderer(info, RenditionCache(store.cache_dir))
    cached, total = renderer.cached_count()
    done = cached
    if progress:
        progress(done, total)
    pending = [c for c in info.cases if any(not renderer.cache.has(renderer.key(c, k)) for k in info.candidates)]
    computed = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    for start in range(0, len(pending), chunk):
        if cancelled and cancelled():
            return PrecomputeResult(total, cached, computed, cancelled=True)
        computed += renderer.render(pending[start:start + chunk], progress=step)
    return PrecomputeResult(total, cached, computed)
