"""two_heads (MoA 1st place 2-heads ResNet): block widths, the phases by epoch (which head, what trains, the lr
multiplier), pre-training really fits the non-scored targets, and the demo experiment (34) resumes exactly."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from molremote.models.params import TwoHeadsParams  # noqa: E402
from molremote.models.two_heads import build  # noqa: E402
from molremote.tasks.moa.task import MoaTask  # noqa: E402

from .moa_demo import assert_same_run, demo_experiment, evaluate, train_uninterrupted_and_resumed  # noqa: E402

P = TwoHeadsParams(hidden=32, narrow=16, pretrain_epochs=2, scored_epochs=1, frozen_epochs=2)


def trainable(model) -> set[str]:
    return {n for n, c in model.named_children() if any(q.requires_grad for q in c.parameters())}


def test_phases_switch_heads_trainable_blocks_and_lr():
    model = build(P, {"n_features": 10, "n_outputs": 4, "n_aux_outputs": 6})
    x = torch.randn(8, 10)
    model.train()
    assert model.set_epoch(0) == 1.0 and model.aux_phase and model(x).shape == (8, 6)  # non-scored head
    assert trainable(model) == {"out1", "a1", "a2", "a3", "a3_", "a4", "aux_head"}
    assert model.set_epoch(2) == 1.0 and not model.aux_phase and model(x).shape == (8, 4)
    assert "aux_head" not in trainable(model) and "out1" in trainable(model)
    assert model.set_epoch(3) == pytest.approx(1 / 3) and trainable(model) == {"a4", "head"}
    assert model.set_epoch(5) == pytest.approx(1 / 5) and trainable(model) == {
        "out1",
        "a1",
        "a2",
        "a3",
        "a3_",
        "a4",
        "head",
    }
    model.set_epoch(0)
    model.eval()
    assert model(x).shape == (8, 4)  # predictions always come from the scored head
    no_aux = build(P, {"n_features": 10, "n_outputs": 4})
    assert no_aux.phase(0) == "scored"  # no non-scored targets: no pre-training


def test_pretraining_fits_the_non_scored_targets_through_the_task_loss():
    from molremote.experiments import validate

    exp = validate(
        {"id": 1, "slug": "t", "task": {"name": "moa"}, "model": {"name": "two_heads"}, "folds": {"scheme": "kfold"}},
        file=None,
    )
    task = MoaTask(exp)
    task.load()
    tr, _ = task.split(0)
    task.x_train, task.x_test = task.train.genes[:, :20].astype("float32"), task.test.genes[:, :20].astype("float32")
    torch.manual_seed(0)
    model = build(P, {"n_features": 20, "n_outputs": 14, "n_aux_outputs": task.y_aux.shape[1]})
    task.setup(model, "cpu")
    batch = task.batch("train", tr[:64], "cpu")
    assert len(batch) == 3 and batch[2].shape == (64, task.y_aux.shape[1])
    model.set_epoch(0)
    opt = torch.optim.Adam([q for q in model.parameters()], lr=1e-2)
    head0 = [q.detach().clone() for q in model.head.parameters()]
    losses = []
    for _ in range(30):
        loss = task.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(a, b) for a, b in zip(head0, model.head.parameters()))  # scored head untouched


@pytest.mark.slow  # three short trainings in-process: ~10 s on a busy 2-core machine
def test_demo_experiment_resumes_exactly_across_a_phase_change_and_evaluates(project, tmp_path):
    # epochs 2 with pretraining 1: the resumed session crosses from the non-scored to the scored phase
    exp = demo_experiment(34, "training.epochs=2", "model.pretrain_epochs=1")
    ref, resumed = train_uninterrupted_and_resumed(exp, tmp_path)
    assert_same_run(ref, resumed)
    evaluate(resumed)
