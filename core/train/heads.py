"""COVID-19 heads measured the way a new hospital meets them: leave-one-source-out, calibrated.

Why this exists: the generators' class heads, trained end to end on the labelled folder, scored
0.73-0.81 on the project's own split but chance on unseen films, because COVID-19 and control
films come from different archives and the heads learned the archive. Here the head's last
linear layer (the R2C-GAN ``ClassHead`` dense layer; Task-GAN's task-network ``fc``) is refitted
on frozen features with every labelled source we have, including NIH no-finding and pneumonia
films as "not COVID-19", and measured only on sources it did not see:

* **leave-one-source-out (LOSO)**: for every source that holds both classes, fit on all other
  sources and score that one; its AUC with a DeLong 95% interval is what a new hospital of that
  kind would see. Sources holding one class only cannot give an AUC by themselves, they train.
* **calibration**: one temperature, fitted on the pooled out-of-source logits, so a shown
  probability means what it says on unseen sources (expected calibration error before/after).
* the **final head** is fitted on all films but the project's held-out test split and divided by
  that temperature; its out-of-source AUC goes into the manifest, where the app reads it to
  decide whether a probability may be shown at all (``core.classifier_display``).

The body stays frozen: a documented deviation (model card), chosen because the body is the
restorer, and a head on frozen features can be refitted and re-measured in minutes on a CPU.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from core.train.data import LabeledImage, read_gray

log = logging.getLogger(__name__)

MIN_PER_CLASS = 5  # a source needs this many films of each class to report an AUC


def head_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The linear layer that turns a generator's pooled features into its (control, COVID-19) logits."""
    net = getattr(model, "net", model)
    for path in ("head.dense", "task.fc"):
        layer: object = net
        for part in path.split("."):
            layer = getattr(layer, part, None)
        if isinstance(layer, torch.nn.Linear):
            return layer
    raise TypeError(f"{type(net).__name__} has no COVID-19 head")


@torch.no_grad()
def film_features(model: torch.nn.Module, films: list[np.ndarray], progress: bool = True) -> np.ndarray:
    """N x C features the head layer reads, for display films in [0, 1], as the app feeds them."""
    from tqdm import tqdm

    from core.models.residual import call_generator
    from core.restore import to_model_input

    layer, captured = head_layer(model), []
    hook = layer.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach().float().clone()))
    try:
        for film in tqdm(films, desc="head features", disable=not progress, unit="film"):
            call_generator(model, torch.from_numpy(to_model_input(film))[None])
    finally:
        hook.remove()
    return torch.cat(captured).numpy()


def auc_with_interval(scores: np.ndarray, truth: np.ndarray, confidence: float = 0.95
                      ) -> tuple[float, float, float]:
    """Empirical AUC (ties half) with a DeLong interval, clipped to [0, 1]."""
    pos, neg = scores[truth == 1], scores[truth == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    auc = float(psi.mean())
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = (v10.var(ddof=1) / len(pos) if len(pos) > 1 else 0.0) + (v01.var(ddof=1) / len(neg) if len(neg) > 1 else 0.0)
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    half = z * math.sqrt(max(var, 0.0))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def expected_calibration_error(prob: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-width bins: the gap between confidence and frequency, weighted by bin size."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    return float(sum(abs(prob[idx == b].mean() - truth[idx == b].mean()) * (idx == b).mean()
                     for b in range(bins) if (idx == b).any()))


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature T minimising the log loss of sigmoid(logit / T) (bounded 0.05..50)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        z = logits / math.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, z) - truth * z))

    return float(math.exp(minimize_scalar(nll, bounds=(math.log(0.05), math.log(50.0)), method="bounded").x))


@dataclass
class LinearHead:
    """A COVID-19 logit ``w . f + b`` on raw features (standardisation folded in)."""

    weight: np.ndarray
    bias: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weight + self.bias

    def scaled(self, temperature: float) -> LinearHead:
        return LinearHead(self.weight / temperature, self.bias / temperature)

    def install(self, model: torch.nn.Module) -> None:
        """Write into the generator's head: logits (0, w.f + b) give softmax = sigmoid(w.f + b)."""
        layer = head_layer(model)
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.zero_()
            layer.weight[1] = torch.as_tensor(self.weight, dtype=layer.weight.dtype)
            layer.bias[1] = float(self.bias)


def fit_head(features: np.ndarray, truth: np.ndarray, c: float = 0.1, weights: np.ndarray | None = None
             ) -> LinearHead:
    """L2-regularised logistic regression on standardised features, class-balanced."""
    scaler = StandardScaler().fit(features)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    clf.fit(scaler.transform(features), truth, sample_weight=weights)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    w = clf.coef_[0] / scale
    return LinearHead(w.astype(np.float64), float(clf.intercept_[0] - np.sum(w * scaler.mean_)))


def _source_weights(sources: list[str]) -> np.ndarray:
    """Each source weighs the same in the fit: NIH's 1,000 films must not drown the small archives."""
    names, counts = np.unique(sources, return_counts=True)
    per = dict(zip(names, len(sources) / (len(names) * counts), strict=True))
    return np.array([per[s] for s in sources])


@dataclass
class SourceResult:
    source: str
    n: int
    covid: int
    auc: float
    low: float
    high: float

    def to_json(self) -> dict:
        return {"source": self.source, "n": self.n, "covid": self.covid, "auc": round(self.auc, 4),
                "ci95": [round(self.low, 4), round(self.high, 4)]}


@dataclass
class HeadReport:
    """What ``measure_and_fit`` found for one variant; ``to_json`` goes into its manifest."""

    per_source: list[SourceResult]
    out_of_source_auc: float
    ci95: tuple[float, float]
    temperature: float
    ece_before: float
    ece_after: float
    films: int
    training_sources: list[str] = field(default_factory=list)
    test_split: dict | None = None

    def to_json(self) -> dict:
        return {"out_of_source_auc": round(self.out_of_source_auc, 4),
                "out_of_source_ci95": [round(self.ci95[0], 4), round(self.ci95[1], 4)],
                "method": "leave-one-source-out over the sources holding both classes; the n-weighted mean "
                          "of their AUCs with a DeLong interval; head refitted on frozen features",
                "per_source": [r.to_json() for r in self.per_source],
                "temperature": round(self.temperature, 4),
                "calibration_error": {"before": round(self.ece_before, 4), "after": round(self.ece_after, 4)},
                "films": self.films, "training_sources": self.training_sources,
                **({"held_out_test_split": self.test_split} if self.test_split else {})}


def measure_and_fit(features: np.ndarray, truth: np.ndarray, sources: list[str], test_mask: np.ndarray,
                    c: float = 0.1) -> tuple[LinearHead, HeadReport]:
    """LOSO figures, the temperature, and the final calibrated head (fitted without ``test_mask`` films)."""
    src = np.asarray(sources)
    loso_logits, loso_truth, results = [], [], []
    for s in sorted(set(sources)):
        held = src == s
        n_pos = int(truth[held].sum())
        if n_pos < MIN_PER_CLASS or int(held.sum()) - n_pos < MIN_PER_CLASS:
            continue
        train = ~held
        head = fit_head(features[train], truth[train], c, _source_weights(list(src[train])))
        z = head.logits(features[held])
        auc, low, high = auc_with_interval(z, truth[held])
        results.append(SourceResult(s, int(held.sum()), n_pos, auc, low, high))
        loso_logits.append(z)
        loso_truth.append(truth[held])
    if not results:
        raise ValueError("no source holds at least 5 films of each class: no out-of-source AUC can be measured")
    n = np.array([r.n for r in results], float)
    w = n / n.sum()
    mean_auc = float(np.sum(w * [r.auc for r in results]))
    # Interval of the weighted mean from each source's DeLong standard error (sources are independent).
    se = np.array([(r.high - r.low) / (2 * 1.959964) for r in results])
    half = 1.959964 * float(np.sqrt(np.sum((w * se) ** 2)))
    z_all, t_all = np.concatenate(loso_logits), np.concatenate(loso_truth)
    temperature = fit_temperature(z_all, t_all)
    ece_before = expected_calibration_error(1 / (1 + np.exp(-z_all)), t_all)
    ece_after = expected_calibration_error(1 / (1 + np.exp(-z_all / temperature)), t_all)
    fit = ~test_mask
    final = fit_head(features[fit], truth[fit], c, _source_weights(list(src[fit]))).scaled(temperature)
    test = None
    if test_mask.any() and 0 < truth[test_mask].sum() < test_mask.sum():
        auc, low, high = auc_with_interval(final.logits(features[test_mask]), truth[test_mask])
        test = {"n": int(test_mask.sum()), "auc": round(auc, 4), "ci95": [round(low, 4), round(high, 4)],
                "note": "the project's own held-out patients; their sources were trained on (optimistic)"}
    report = HeadReport(results, mean_auc, (max(0.0, mean_auc - half), min(1.0, mean_auc + half)), temperature,
                        ece_before, ece_after, int(len(truth)), sorted(set(sources)), test)
    return final, report


def classification_films(labeled: Path, extra: list[Path], test_names: set[str], limit_per_folder: int,
                         seed: int = 0) -> tuple[list[LabeledImage], list[int], np.ndarray]:
    """(films, COVID-19 truth 0/1, test mask): the labelled folder plus ``extra`` folders, whose labels
    other than COVID-19 (NIH no-finding, pneumonia) count as "not COVID-19"; at most
    ``limit_per_folder`` films of each extra folder, drawn evenly over its labels."""
    from core.train.data import is_covid_label, read_labeled_folder

    items = read_labeled_folder(labeled)
    truth = [it.label for it in items]
    rng = np.random.default_rng(seed)
    for folder in extra:
        by_label: dict[str, list[LabeledImage]] = {}
        for it in read_labeled_folder(folder, other_labels=True):
            by_label.setdefault(it.raw_label, []).append(it)
        share = max(1, limit_per_folder // max(1, len(by_label)))
        for label, group in sorted(by_label.items()):
            pick = rng.permutation(len(group))[:share]
            for i in sorted(pick):
                items.append(group[i])
                truth.append(1 if is_covid_label(label) else 0)
    test_mask = np.array([it.name in test_names and it.path.parent == Path(labeled) for it in items])
    return items, truth, test_mask


def load_films(items: list[LabeledImage]) -> list[np.ndarray]:
    return [read_gray(it.path) for it in items]


HEADS_RUN = "heads"  # RUNS/heads/<variant>.safetensors + .json, grafted by ``r2c-review publish``


def head_state_keys(model: torch.nn.Module) -> tuple[str, str]:
    """The model-file names of the head layer's weight and bias (the generator's own names)."""
    net = getattr(model, "net", model)
    layer = head_layer(model)
    for name, module in net.named_modules():
        if module is layer:
            return f"{name}.weight", f"{name}.bias"
    raise TypeError("head layer not found among the generator's modules")


def run_head_fitting(runs: Path, labeled: Path, extra: list[Path], limit_per_folder: int = 300,
                     variants: list[str] | None = None, progress: bool = True) -> dict[str, dict]:
    """``r2c-review train-heads``: for each generator run under ``runs`` (with the shared tone curve
    of ``runs/tone`` grafted, as publish will), measure and refit the COVID-19 head; writes
    ``runs/heads/<variant>.safetensors`` (the head's two tensors) and ``.json`` (the report)."""
    import json
    import time

    from core.errors import TrainingError
    from core.restore import generator_from_state
    from core.train.domains import DomainPlan
    from core.train.tone import TONE_FILE, TONE_RUN, graft_tone_curve
    from core.variants import VARIANTS
    from core.weights.model_file import load_state, write_safetensors

    out_dir = runs / HEADS_RUN
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    films_cache: tuple[list, list, np.ndarray, list[np.ndarray]] | None = None
    for vid in variants or list(VARIANTS):
        src = runs / vid / "model" / f"{vid}.safetensors"
        if not src.is_file():
            continue
        started = time.monotonic()
        state, manifest = load_state(src)
        if manifest.output_mode == "residual" and (runs / TONE_RUN / "model" / TONE_FILE).is_file():
            state = graft_tone_curve(state, runs / TONE_RUN, manifest)
        model = generator_from_state(manifest.architecture, manifest.q, manifest.output_mode, state, src).eval()
        if films_cache is None:
            plan = DomainPlan.load(runs / vid / "domains.json")
            items, truth, test_mask = classification_films(labeled, extra, set(plan.test), limit_per_folder)
            films_cache = (items, truth, test_mask, load_films(items))
        items, truth, test_mask, films = films_cache
        features = film_features(model, films, progress)
        head, report = measure_and_fit(features, np.asarray(truth), [it.source for it in items], test_mask)
        w_key, b_key = head_state_keys(model)
        head.install(model)
        layer = head_layer(model)
        write_safetensors(out_dir / f"{vid}.safetensors", {w_key: layer.weight.detach().float().contiguous(),
                                                          b_key: layer.bias.detach().float().contiguous()},
                          error=TrainingError)
        record = report.to_json() | {"seconds": round(time.monotonic() - started, 1),
                                     "data": [str(labeled)] + [str(e) for e in extra],
                                     "limit_per_extra_folder": limit_per_folder}
        (out_dir / f"{vid}.json").write_text(json.dumps(record, indent=1))
        results[vid] = record
        log.info("%s: out-of-source AUC %.3f", vid, report.out_of_source_auc)
    return results


def graft_head(state: dict[str, torch.Tensor], heads_run: Path, vid: str, manifest: object
               ) -> dict[str, torch.Tensor]:
    """Give a generator file the head refitted by ``run_head_fitting``; its report goes into the manifest."""
    import json

    from safetensors.torch import load_file

    path = heads_run / f"{vid}.safetensors"
    head = load_file(str(path))
    for key, value in head.items():
        if key not in state or state[key].shape != value.shape:
            raise ValueError(f"{path}: {key} does not fit {vid}")
    manifest.provenance["covid_head"] = json.loads(path.with_suffix(".json").read_text())  # type: ignore[attr-defined]
    return state | {k: v.to(state[k].dtype) for k, v in head.items()}
