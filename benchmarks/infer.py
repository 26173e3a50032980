"""Name -> (sex, era): the conditional WaveNet against the baselines a data scientist
would reach for first, on held-out names.

On data/babynames.csv.gz (name, sex, decade, births) split by distinct name (seed 42,
80/10/10, as training splits it), in one run:
1. trains the conditional WaveNet on the training names' rows (`training.train`, within
   --time-budget seconds), its posterior's temperature and prior calibrated on the
   validation names (training/calibrate.py, stored in the checkpoint); or, with
   --checkpoint DIR, takes a model trained on the same split;
2. fits the baselines on the training names, their settings chosen on the validation
   names: a character 1-4-gram logistic regression for sex, a ridge regression on the
   same features for the year, and the last-letter rule (scikit-learn: the `bench` extra);
3. scores every test name: its true sex is its majority sex by births, its true year its
   births-weighted mean year (a decade's births count at decade + 5). Sex: accuracy and
   log loss; year: mean absolute error (the model's: the posterior's expected decade + 5).
Also the model's validation loss per character with labels given and with labels unknown.

    pip install -e ".[bench]"
    python benchmarks/infer.py [--quick] [--checkpoint DIR] [--out DIR] [--time-budget S]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import math
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from model import WaveNet, WaveNetConfig
from model.checkpoint import Checkpoint, load_checkpoint
from model.posterior import Hypotheses, fit_temperature, label_logprobs
from training.calibrate import majority_labels
from training.config import TrainConfig
from training.corpus import Row, load_corpus
from training.data import evaluate, prepare_data, split_names
from training.labelled import split_rows
from training.trainer import train

CORPUS = REPO / "data" / "babynames.csv.gz"
SEED = 42
EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] for log loss


@dataclass
class Truth:
    names: list[str]
    female: np.ndarray  # (N,) 1 where the majority of births are F
    year: np.ndarray  # (N,) births-weighted mean year

    @classmethod
    def of(cls, rows: list[Row]) -> Truth:
        births: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # F, M, years
        for name, (sex, decade), count in rows:
            b = births[name]
            b[0 if sex == "F" else 1] += count
            b[2] += count * (int(decade) + 5)
        names = list(births)
        f, m, years = (np.array([births[n][i] for n in names]) for i in range(3))
        return cls(names, (f > m).astype(float), years / (f + m))

    def head(self, n: int) -> Truth:
        return Truth(self.names[:n], self.female[:n], self.year[:n])


@dataclass
class Scores:
    p_female: np.ndarray
    year: np.ndarray

    def report(self, truth: Truth) -> tuple[float, float, float]:
        """Sex accuracy, sex log loss, year MAE."""
        p = np.clip(self.p_female, EPS, 1 - EPS)
        acc = float(((p > 0.5) == (truth.female > 0.5)).mean())
        logloss = float(-(truth.female * np.log(p) + (1 - truth.female) * np.log(1 - p)).mean())
        return acc, logloss, float(np.abs(self.year - truth.year).mean())


def baselines(
    train: Truth, val: Truth, test: Truth, cs: tuple[float, ...], alphas: tuple[float, ...]
) -> dict[str, Scores]:
    """Character 1-4-gram logistic and ridge regressions, settings chosen on val; the
    last-letter rule (P(F) and mean year per last letter, from the training names)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    features = CountVectorizer(analyzer="char_wb", ngram_range=(1, 4), lowercase=False)
    x_train = features.fit_transform(train.names)
    x_val, x_test = features.transform(val.names), features.transform(test.names)
    best_logit = min(
        (LogisticRegression(C=c, max_iter=2000).fit(x_train, train.female) for c in cs),
        key=lambda m: Scores(m.predict_proba(x_val)[:, 1], val.year).report(val)[1],
    )
    best_ridge = min(
        (Ridge(alpha=a).fit(x_train, train.year) for a in alphas),
        key=lambda m: float(np.abs(m.predict(x_val) - val.year).mean()),
    )
    print(f"baselines: logistic C={best_logit.C}, ridge alpha={best_ridge.alpha} (on val)")
    out = {
        "char n-gram regressions": Scores(
            best_logit.predict_proba(x_test)[:, 1], best_ridge.predict(x_test)
        )
    }
    by_letter: dict[str, list[float]] = defaultdict(lambda: [1.0, 2.0, 0.0, 0.0])  # smoothed
    for name, female, year in zip(train.names, train.female, train.year, strict=True):
        b = by_letter[name[-1]]
        b[0], b[1], b[2], b[3] = b[0] + female, b[1] + 1, b[2] + year, b[3] + 1
    mean_year = float(train.year.mean())
    rule = [by_letter[n[-1]] for n in test.names]
    out["last letter"] = Scores(
        np.array([b[0] / b[1] for b in rule]),
        np.array([b[2] / b[3] if b[3] else mean_year for b in rule]),
    )
    return out


def model_scores(
    checkpoint: Checkpoint, val_rows: list[Row], test: Truth, val_names: int
) -> dict[str, Scores]:
    """The model's posteriors of the test names: as calibrated in the checkpoint, plain
    Bayes (temperature 1, type priors), and with a temperature per column (fitted on val
    here; for comparison only, the checkpoint stores one)."""
    model, space = checkpoint.model, checkpoint.labels
    assert isinstance(model, WaveNet) and space is not None
    years = np.array(space.column("decade").numbers()) + 5

    def scores(hyp: Hypotheses, logp: torch.Tensor, tau: tuple[float, float]) -> Scores:
        sex = hyp.posterior(logp, tau[0])[space.names.index("sex")].numpy()
        decade = hyp.posterior(logp, tau[1])[space.names.index("decade")].numpy()
        f = space.column("sex").values.index("F")
        return Scores(sex[:, f], decade @ years)

    out = {}
    for prior in dict.fromkeys([space.prior, "types"]):
        hyp = Hypotheses.of(space, prior)
        logp = label_logprobs(model, checkpoint.vocab, test.names, hyp.sets)
        if prior == space.prior:
            out["model, calibrated"] = scores(hyp, logp, (space.temperature,) * 2)
            names, truth = majority_labels(val_rows, space)
            names, truth = names[:val_names], truth[:val_names]
            val_logp = label_logprobs(model, checkpoint.vocab, names, hyp.sets)
            taus = [fit_temperature(hyp, val_logp, {j: truth[:, j]}) for j in range(2)]
            out[f"model, per-column temperature {taus[0]:.2f}/{taus[1]:.2f}"] = scores(
                hyp, logp, (taus[0], taus[1])
            )
        if prior == "types":
            out["model, plain Bayes"] = scores(hyp, logp, (1.0, 1.0))
    return out


def recipe(args: argparse.Namespace) -> TrainConfig:
    """The conditional model trained here: the shipped recipe (gated, residual, skip, a
    ReLU head, dropout, BatchNorm, weight averaging, packed batches) within the budget."""
    model = WaveNetConfig(
        n_embd=32,
        n_hidden=args.n_hidden,
        kernel_sizes=(2, 2, 2, 2),
        gated=True,
        residual=True,
        skip=True,
        head_hidden=args.n_hidden,
        dropout=args.dropout,
    )
    return TrainConfig(
        corpus=str(args.corpus),
        out=str(args.out),
        model=model,
        split_seed=SEED,
        row_weights=args.row_weights,
        label_dropout=args.label_dropout,
        lr=3e-3,
        weight_decay=0.1,
        warmup_steps=200,
        batch_size=128,
        batch_unit="packed",
        steps=1_000_000,  # the time budget ends the run and drives the schedule
        time_budget_s=args.time_budget,
        ema_decay=0.998,
        eval_interval=args.eval_interval,
        diagnostics=False,
        threads=args.threads,
        progress=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: ~1 minute of training")
    parser.add_argument("--checkpoint", type=Path, help="evaluate this checkpoint, no training")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--out", type=Path, default=REPO / "runs" / "infer", help="checkpoint to write"
    )
    parser.add_argument("--time-budget", type=float, default=540.0, help="training seconds")
    parser.add_argument("--n-hidden", type=int, default=160)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--row-weights", choices=["uniform", "log_count"], default="log_count")
    parser.add_argument("--label-dropout", type=float, default=0.15)
    parser.add_argument("--eval-interval", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.time_budget, args.n_hidden, args.eval_interval = 60.0, 64, 500
    torch.set_num_threads(args.threads)

    corpus = load_corpus(args.corpus)
    if corpus.labels is None or corpus.labels.columns != ("sex", "decade"):
        parser.error(f"{args.corpus}: expected a corpus labelled by sex and decade")
    rows = split_rows(corpus.labels, split_names(corpus.names, seed=SEED))
    train_t, val_t, test_t = (Truth.of(r) for r in rows)
    print(f"names: train {len(train_t.names)}, val {len(val_t.names)}, test {len(test_t.names)}")

    started = time.perf_counter()
    path = args.checkpoint
    if path is None:
        train(recipe(args))
        path = args.out
        print(f"trained {path} in {time.perf_counter() - started:.0f}s")
    checkpoint = load_checkpoint(path)
    cfg = TrainConfig.from_dict(checkpoint.meta["training"]["config"])
    same_corpus = checkpoint.meta["corpus"]["sha256"] == corpus.sha256
    if not same_corpus or cfg.split_seed != SEED or checkpoint.labels is None:
        parser.error(f"{path} was not trained on {args.corpus} split with seed {SEED}")
    metrics = checkpoint.meta.get("metrics", {})
    if "val_loss_unlabeled" in metrics:  # measured on the same split as training ended
        val_labeled, val_unlabeled = metrics["val_loss"], metrics["val_loss_unlabeled"]
    else:
        cfg.corpus = str(args.corpus)
        _, _, data = prepare_data(cfg, torch.device("cpu"))
        val_labeled = evaluate(checkpoint.model, data.val)
        val_unlabeled = evaluate(checkpoint.model, data.val, labels=False)
    print(
        f"model: {checkpoint.model.num_params():,} parameters, val loss per character "
        f"{val_labeled:.4f} with labels, {val_unlabeled:.4f} without"
    )
    space = checkpoint.labels
    print(
        f"calibration (validation names): prior {space.prior}, temperature {space.temperature:.3f}"
    )

    if args.quick:  # a smoke test: fewer names scored, the baselines' settings fixed
        test_t = test_t.head(2000)
    val_names = 2000 if args.quick else len(val_t.names)
    cs, alphas = ((3.0,), (10.0,)) if args.quick else ((1.0, 3.0, 10.0), (1.0, 3.0, 10.0, 30.0))
    results = {
        **model_scores(checkpoint, rows[1], test_t, val_names),
        **baselines(train_t, val_t, test_t, cs, alphas),
    }
    print(f"{'test names':<44} {'sex acc':>8} {'log loss':>9} {'year MAE':>9}")
    for what, scores in results.items():
        acc, logloss, mae = scores.report(test_t)
        print(f"{what:<44} {acc:>8.4f} {logloss:>9.4f} {mae:>9.2f}")
    model = results["model, calibrated"].report(test_t)
    base = results["char n-gram regressions"].report(test_t)
    assert all(math.isfinite(v) for v in (*model, *base))
    print(
        f"infer: sex_acc={model[0]:.4f} sex_acc_baseline={base[0]:.4f} "
        f"sex_logloss={model[1]:.4f} sex_logloss_baseline={base[1]:.4f} "
        f"year_mae={model[2]:.2f} year_mae_baseline={base[2]:.2f} "
        f"val_labeled={val_labeled:.4f} val_unlabeled={val_unlabeled:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
