"""The cached sampler against the full forward pass, and its controls."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from model import Vocab, WaveNet, WaveNetConfig
from model.checkpoint import Checkpoint
from model.controls import filter_logits
from model.engine import Engine
from model.incremental import IncrementalWaveNet
from model.jobs import SampleJob
from model.labels import LabelError, LabelSpace
from model.request import GenerateRequest
from model.runs import CHUNK_ROWS, GenerateRun
from model.sampling import Batch, sample, sample_jobs
from model.scheduler import Scheduler
from model.scoring import score_names
from tests.model.test_wavenet import OPTION_CONFIGS, option_model

VOCAB = Vocab.from_names(["abcdefghijklmnopqrstuvwxyz"])


def trained_like(kernels: tuple[int, ...] = (2, 2, 2), seed: int = 0) -> WaveNet:
    """A random model with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = WaveNet(WaveNetConfig(n_embd=12, n_hidden=24, kernel_sizes=kernels))
    with torch.no_grad():
        for level in model.levels:
            level.bn.weight.uniform_(0.5, 1.5)
            level.bn.bias.normal_(std=0.3)
            level.bn.running_mean.normal_(std=0.3)
            level.bn.running_var.uniform_(0.5, 2.0)
        model.lm_head.weight.normal_(std=0.5)
    return model.eval()


def assert_steps_equal_full_forward(model: WaveNet, rows: int, length: int) -> None:
    """Stepping the cached sampler through random names gives the full forward's logits
    at every position."""
    net = IncrementalWaveNet(model)
    torch.manual_seed(1)
    idx = torch.randint(1, 27, (rows, length))
    idx[:, 0] = 0
    with torch.no_grad():
        full, _ = model(idx)
    state = net.init_state(rows)
    for t in range(length):
        torch.testing.assert_close(net.step(idx[:, t], state, t), full[:, t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernels", [(2, 2, 2), (8,), (3,), (2, 2, 2, 2), (3, 2)])
def test_incremental_steps_equal_the_full_forward(kernels: tuple[int, ...]) -> None:
    assert_steps_equal_full_forward(trained_like(kernels), rows=6, length=20)


def test_sampled_logprob_equals_score() -> None:
    model = trained_like()
    names, logprobs = sample(
        IncrementalWaveNet(model), 200, GenerateRequest(), torch.Generator().manual_seed(0)
    )
    scores = score_names(model, VOCAB, [VOCAB.decode(n) for n in names])
    for lp, s in zip(logprobs, scores, strict=True):
        assert lp == pytest.approx(s.logprob, abs=1e-4)


def greedy_by_full_forward(model: WaveNet, max_length: int) -> list[int]:
    """Re-run the whole prefix each step and take the argmax (end masked at t=0)."""
    ids = [0]
    for t in range(max_length):
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0][0, -1]
        if t == 0:
            logits[0] = float("-inf")  # min_length 1
        nxt = int(logits.argmax())
        if nxt == 0:
            break
        ids.append(nxt)
    return ids[1:]


def test_temperature_zero_is_the_greedy_name() -> None:
    model = trained_like()
    names, _ = sample(
        IncrementalWaveNet(model),
        3,
        GenerateRequest(temperature=0, max_length=12),
        torch.Generator().manual_seed(0),
    )
    expected = greedy_by_full_forward(model, 12)
    assert names == [expected] * 3


def test_same_seed_same_names_other_seed_other_names() -> None:
    net = IncrementalWaveNet(trained_like())
    a = sample(net, 50, GenerateRequest(), torch.Generator().manual_seed(7))
    b = sample(net, 50, GenerateRequest(), torch.Generator().manual_seed(7))
    c = sample(net, 50, GenerateRequest(), torch.Generator().manual_seed(8))
    assert a == b and a[0] != c[0]


def test_first_characters_follow_the_model_distribution() -> None:
    model = trained_like()
    n = 20_000
    names, _ = sample(
        IncrementalWaveNet(model),
        n,
        GenerateRequest(min_length=1),
        torch.Generator().manual_seed(0),
    )
    counts = torch.bincount(torch.tensor([name[0] for name in names]), minlength=27).float()
    with torch.no_grad():
        logits, _ = model(torch.zeros(1, 1, dtype=torch.long))
    logits[0, 0, 0] = float("-inf")  # min_length 1 masks the end token
    expected = F.softmax(logits[0, 0], dim=-1) * n
    # every count within 5 standard deviations of its binomial expectation
    std = (expected * (1 - expected / n)).sqrt() + 1e-9
    assert ((counts - expected).abs() <= 5 * std + 1).all()


def test_prefix_and_lengths_respected() -> None:
    model = trained_like()
    with torch.no_grad():
        model.lm_head.bias[0] += 4.0  # make ending likely, so both bounds come into play
    net = IncrementalWaveNet(model)
    prefix = tuple(VOCAB.encode("ma"))
    params = GenerateRequest(prefix="ma", min_length=4, max_length=7)
    names, _ = sample(net, 300, params, torch.Generator().manual_seed(0), prefix)
    assert all(tuple(n[:2]) == prefix and 4 <= len(n) <= 7 for n in names)
    lengths = {len(n) for n in names}
    assert 4 in lengths and 7 in lengths  # ends allowed from min_length on, forced at max


def test_top_k_and_top_p_filters() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    k2 = filter_logits(logits, GenerateRequest(top_k=2))
    assert torch.isfinite(k2).tolist() == [[True, True, False, False]]
    probs = F.softmax(logits, -1)[0]  # 0.644, 0.237, 0.087, 0.032
    p = filter_logits(logits, GenerateRequest(top_p=float(probs[0] + probs[1] - 0.01)))
    assert torch.isfinite(p).tolist() == [[True, True, False, False]]
    only_top = filter_logits(logits, GenerateRequest(top_p=0.1))
    assert torch.isfinite(only_top).tolist() == [[True, False, False, False]]
    net = IncrementalWaveNet(trained_like())
    greedy, _ = sample(net, 5, GenerateRequest(temperature=0), torch.Generator().manual_seed(0))
    top1, _ = sample(net, 5, GenerateRequest(top_k=1), torch.Generator().manual_seed(0))
    assert top1 == greedy


def test_a_vanishing_temperature_is_the_greedy_limit() -> None:
    # Dividing raw logits by 1e-200 overflows to +-inf and softmax gives NaN: every name
    # then ran to max_length instead of ending where greedy decoding ends.
    net = IncrementalWaveNet(trained_like())
    greedy, _ = sample(net, 5, GenerateRequest(temperature=0), torch.Generator().manual_seed(0))
    # 1e-40 is still a float32 (3 / 1e-40 overflows); 1e-200 and 5e-324 round to 0 there
    for temperature in (1e-40, 1e-200, 5e-324):
        tiny, _ = sample(
            net, 5, GenerateRequest(temperature=temperature), torch.Generator().manual_seed(1)
        )
        assert tiny == greedy
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    cold = F.softmax(filter_logits(logits, GenerateRequest(temperature=1e-40)), dim=-1)
    assert cold.tolist() == [[1.0, 0.0, 0.0, 0.0]]


def test_invalid_params_rejected() -> None:
    for bad in (
        {"temperature": -1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_k": 0},
        {"min_length": 5, "max_length": 4},
        {"prefix": "abc", "max_length": 2},
    ):
        with pytest.raises(ValueError):
            GenerateRequest(**bad)  # type: ignore[arg-type]


def engine_with_corpus(corpus: set[str]) -> Engine:
    model = trained_like()
    meta = {"files": {"model": {"sha256": "0" * 64}}}
    return Engine(Checkpoint(model, VOCAB, meta, frozenset(corpus), path=None))  # type: ignore[arg-type]


def test_exclude_existing_and_unique() -> None:
    probe = engine_with_corpus(set()).generate(GenerateRequest(n=300, seed=1, max_length=3))
    common = {g.name for g in probe.names}  # the short names this model makes often
    engine = engine_with_corpus(common)
    result = engine.generate(
        GenerateRequest(n=50, seed=1, max_length=6, exclude_existing=True, unique=True)
    )
    names = [g.name for g in result.names]
    assert result.complete and len(names) == 50 and len(set(names)) == 50
    assert not set(names) & common
    assert result.sampled > 50  # some were rejected


def test_filters_give_up_within_budget_and_say_so() -> None:
    engine = engine_with_corpus(set())
    result = engine.generate(GenerateRequest(n=100, seed=0, max_length=1, unique=True))
    assert not result.complete and len(result.names) <= 26
    assert result.sampled <= 100 * engine.budget_factor + 100
    greedy = engine.generate(GenerateRequest(n=5, temperature=0, unique=True))
    assert len(greedy.names) == 1 and not greedy.complete


@pytest.mark.parametrize("options", OPTION_CONFIGS)
def test_incremental_handles_every_option(options: dict) -> None:
    assert_steps_equal_full_forward(option_model(options), rows=4, length=14)


def test_requests_get_the_same_names_merged_or_alone() -> None:
    engine = engine_with_corpus({"ab", "ba"})
    reqs = [
        GenerateRequest(n=7, seed=1),
        GenerateRequest(n=30, seed=2, temperature=0.7, top_k=5, max_length=9),
        GenerateRequest(n=3, seed=3, prefix="qu", min_length=4, max_length=6),
        GenerateRequest(n=12, seed=4, top_p=0.6, unique=True, exclude_existing=True),
        GenerateRequest(n=2, temperature=0, max_length=5),
        GenerateRequest(n=40, seed=5, temperature=1.5, max_length=3, unique=True),
    ]
    merged = engine.generate_many(reqs)
    for req, together in zip(reqs, merged, strict=True):
        alone = engine.generate(req)
        assert [g.name for g in together.names] == [g.name for g in alone.names], req
        for a, b in zip(together.names, alone.names, strict=True):  # batch size moves the
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)  # last float bits only
        assert together.sampled == alone.sampled and together.complete == alone.complete


def test_score_many_splits_per_request() -> None:
    engine = engine_with_corpus({"emma"})
    out = engine.score_many([["emma", "zoe"], ["ann"]])
    assert [[s.score.name for s in part] for part in out] == [["emma", "zoe"], ["ann"]]
    assert out[0][0].in_corpus and not out[1][0].in_corpus
    assert out[1][0].score.logprob == pytest.approx(engine.score(["ann"])[0].score.logprob)


def test_a_vanishing_top_p_keeps_the_likeliest_id() -> None:
    # 1e-46 is 0 in float32: every id's mass before it reached it, the likeliest's too,
    # and with every id removed the sampler returned "zzzzzzzzzzzzzzzz"
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 5.0, 1.0, 0.0]])
    kept = torch.isfinite(filter_logits(logits, GenerateRequest(top_p=1e-46)))
    assert kept.tolist() == [[True, False, False, False], [False, True, False, False]]
    net = IncrementalWaveNet(trained_like())
    greedy, _ = sample(net, 5, GenerateRequest(temperature=0), torch.Generator().manual_seed(0))
    tiny, _ = sample(net, 5, GenerateRequest(top_p=1e-46), torch.Generator().manual_seed(1))
    assert tiny == greedy


def test_rows_that_join_mid_flight_get_their_names_alone() -> None:
    net = IncrementalWaveNet(trained_like((2, 2, 2, 2)))  # rings of spans 1, 2, 4, 8

    def job(n: int, seed: int, **controls: object) -> SampleJob:
        req = GenerateRequest(**controls)  # type: ignore[arg-type]
        prefix = tuple(VOCAB.encode(req.prefix))
        return SampleJob(n, req, prefix, torch.Generator().manual_seed(seed))

    def jobs() -> list[SampleJob]:  # with fresh generators each time
        return [
            job(40, 1),
            job(7, 2, prefix="ma", min_length=4, max_length=9),
            job(12, 3, temperature=0.5, top_k=4),
            job(3, 4, temperature=0),
        ]

    alone = [sample_jobs(net, [j])[0] for j in jobs()]
    batch = Batch(net)
    index: dict[int, int] = {}  # of each running job, by handle (handles are reused)
    results: dict[int, tuple[list[list[int]], list[float]]] = {}

    def step() -> None:
        for handle, names, logprobs in batch.step():
            results[index.pop(handle)] = (names, logprobs)

    for i, j in enumerate(jobs()):  # each joins a few steps after the one before
        index[batch.add(j)] = i
        for _ in range(3 + i):
            step()
    while len(batch):
        step()
    for i, (names, logprobs) in enumerate(alone):
        assert results[i][0] == names
        assert results[i][1] == pytest.approx(logprobs, abs=1e-4)


def test_a_row_cap_changes_when_jobs_run_not_what_they_find() -> None:
    engine = engine_with_corpus({"ab", "ba"})
    reqs = [
        GenerateRequest(n=300, seed=1),
        GenerateRequest(n=150, seed=2, unique=True, exclude_existing=True, max_length=5),
        GenerateRequest(n=1, seed=3),
    ]
    free = engine.generate_many(reqs)
    cap = 2 * CHUNK_ROWS
    scheduler = Scheduler(engine, max_rows=cap)  # two jobs at a time
    runs = [GenerateRun(engine, req) for req in reqs]
    for run in runs:
        scheduler.add(run)
    most = 0
    while len(scheduler):
        scheduler.step(lambda rows: None)
        most = max(most, len(scheduler.batch))
    assert most <= cap + CHUNK_ROWS * len(reqs)  # and a job for a request with no rows running
    for run, expected in zip(runs, free, strict=True):
        got = run.result()
        assert [g.name for g in got.names] == [g.name for g in expected.names]
        assert got.sampled == expected.sampled and got.stopped == expected.stopped


def test_a_request_out_of_time_returns_what_it_found() -> None:
    engine = engine_with_corpus(set())
    scheduler = Scheduler(engine, max_rows=64)
    run = GenerateRun(engine, GenerateRequest(n=1000, seed=0), deadline=time.monotonic() + 60)
    scheduler.add(run)
    while not run.taken:  # until some names are in
        assert not scheduler.step()
    run.deadline = time.monotonic()  # then its time runs out
    finished = scheduler.step()
    result = run.result()
    assert finished == [run] and not result.complete and result.stopped == "time"
    assert 0 < len(result.names) < 1000 and result.sampled == len(result.names)
    assert len(scheduler) == 0 and len(scheduler.batch) == 0  # its rows are gone


def labelled_engine() -> Engine:
    space = LabelSpace.build(["sex", "decade"], [(("F", "1950"), 3.0), (("M", "2000"), 1.0)])
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(n_embd=8, n_hidden=16, label_sizes=space.sizes)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.3)  # the label projections start at zero
    meta = {"files": {"model": {"sha256": "0" * 64}}}
    return Engine(Checkpoint(model, VOCAB, meta, frozenset(), None, space))  # type: ignore[arg-type]


def test_requests_of_different_labels_share_a_batch() -> None:
    engine = labelled_engine()
    reqs = [
        GenerateRequest(n=30, seed=1, labels={"sex": "F"}),
        GenerateRequest(n=30, seed=1, labels={"sex": "M", "decade": 2000}),
        GenerateRequest(n=30, seed=1),
    ]
    merged = engine.generate_many(reqs)
    assert len({tuple(g.name for g in r.names) for r in merged}) == 3  # labels matter
    for req, together in zip(reqs, merged, strict=True):
        alone = engine.generate(req)
        assert [g.name for g in together.names] == [g.name for g in alone.names]
        names = [g.name for g in together.names]
        scored = engine.score_many([names], [req.labels])[0]
        assert [s.score.logprob for s in scored] == pytest.approx(
            [g.logprob for g in together.names], abs=1e-4
        )
    with pytest.raises(LabelError):
        engine.generate(GenerateRequest(n=1, labels={"colour": "red"}))
    with pytest.raises(LabelError):
        engine_with_corpus(set()).generate(GenerateRequest(n=1, labels={"sex": "F"}))
