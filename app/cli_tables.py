"""`namegen`'s output for people: the API's answers as plain-text tables."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from app.schemas import GenerateOut, InferOut, ScoresOut


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def generate_table(out: GenerateOut) -> str:
    rows = [
        [g.name, f"{g.logprob:.3f}", f"{g.logprob / (len(g.name) + 1):.3f}", _yes(g.in_corpus)]
        for g in out.names
    ]
    table = _grid(["name", "logprob", "per char", "in corpus"], rows, {1, 2})
    done = "" if out.complete else f", fewer than asked ({out.stopped})"
    return f"{table}\n\n{len(out.names)} names from {out.sampled} sampled{done}; seed {out.seed}"


def score_table(out: ScoresOut) -> str:
    rows = [
        [
            s.name,
            f"{s.logprob:.3f}",
            f"{s.logprob_per_char:.3f}",
            f"{s.perplexity:.2f}",
            _yes(s.in_corpus),
            " ".join(f"{c.char}:{c.prob:.2f}" for c in s.char_probs),
        ]
        for s in out.scores
    ]
    header = ["name", "logprob", "per char", "perplexity", "in corpus", "P(each character)"]
    table = _grid(header, rows, {1, 2, 3})
    used = ", ".join(f"{k}={v}" for k, v in out.labels.items())
    return f"{table}\n\nlabels: {used}" if used else table


def infer_table(out: InferOut) -> str:
    columns = list(out.results[0].labels) if out.results else []
    rows = []
    for r in out.results:
        cells = [r.name]
        for column in columns:
            c = r.labels[column]
            text = f"{c.best} {c.probs[c.best]:.2f}"
            mean = c.expected_year if c.expected_year is not None else c.expected
            cells.append(f"{text} (mean {mean:.0f})" if mean is not None else text)
        rows.append([*cells, f"{r.logprob:.3f}", _yes(r.in_corpus)])
    table = _grid(["name", *columns, "logprob", "in corpus"], rows, {len(columns) + 1})
    return f"{table}\n\nprior: {out.prior}, temperature {out.temperature:g}"


def table(command: str, out: BaseModel) -> str:
    if isinstance(out, GenerateOut):
        return generate_table(out)
    if isinstance(out, ScoresOut):
        return score_table(out)
    if isinstance(out, InferOut):
        return infer_table(out)
    raise TypeError(f"no table for {command}")
