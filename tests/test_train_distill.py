"""Knowledge distillation: the soft-target loss, its blend with the label loss, the teacher checks, and a run that
learns what its teacher predicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from train_synth import make_dataset

from ferlab.errors import ConfigError
from ferlab.evaluate.compare import earlier_stages
from ferlab.labels import EMOTIONS
from ferlab.train import TrainConfig, fit
from ferlab.train.checkpoint import load_classifier
from ferlab.train.distill import Distiller, distillation_loss
from ferlab.train.engine import StepSettings


def _cfg(tmp_path, name, **kw) -> TrainConfig:
    base = dict(model="sequential_small", image_size=24, epochs=6, batch_size=16, out=str(tmp_path / name),
                progress=False, lr=3e-3, schedule="none", augment="none")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny():
    return make_dataset(per_class=16, size=24, classes=EMOTIONS[:4], test_per_class=6)


def test_distillation_loss_is_the_softened_kl_times_t_squared():
    student, teacher = torch.randn(5, 4), torch.randn(5, 4)
    t = 3.0
    p = F.softmax(teacher / t, 1)
    expected = (p * (p.log() - F.log_softmax(student / t, 1))).sum(1).mean() * t * t
    torch.testing.assert_close(distillation_loss(student, teacher, t), expected)
    assert float(distillation_loss(teacher, teacher, t)) == pytest.approx(0.0, abs=1e-6)


def test_blend_weighs_the_label_loss_against_the_teacher():
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    teacher.requires_grad_(False)
    settings = StepSettings(num_classes=3, mean=(0.5,), std=(0.25,), channels_last=False)
    images = torch.rand(6, 1, 4, 4)
    student_logits = torch.randn(6, 3, requires_grad=True)
    label_loss = torch.tensor(2.0)
    soft = distillation_loss(student_logits, teacher((images - 0.5) / 0.25), 2.0)
    only_labels = Distiller(teacher, settings, weight=0.0, temperature=2.0)
    only_teacher = Distiller(teacher, settings, weight=1.0, temperature=2.0)
    half = Distiller(teacher, settings, weight=0.5, temperature=2.0)
    torch.testing.assert_close(only_labels.blend(label_loss, student_logits, images), label_loss)
    torch.testing.assert_close(only_teacher.blend(label_loss, student_logits, images), soft)  # teacher's own norm
    blended = half.blend(label_loss, student_logits, images)
    torch.testing.assert_close(blended, 0.5 * label_loss + 0.5 * soft)
    blended.backward()
    assert student_logits.grad is not None and all(p.grad is None for p in teacher.parameters())


def _agreement(run_a, run_b, images: np.ndarray) -> float:
    a = load_classifier(run_a / "last.pt").predict_proba(images).argmax(1)
    b = load_classifier(run_b / "last.pt").predict_proba(images).argmax(1)
    return float((a == b).mean())


def test_a_student_with_shuffled_labels_learns_what_its_teacher_predicts(tmp_path, tiny):
    teacher = fit(_cfg(tmp_path, "teacher"), dataset=tiny)
    rng = np.random.default_rng(1)
    train = tiny.splits == "train"
    shuffled = tiny.labels.copy()
    shuffled[train] = rng.permutation(shuffled[train])  # the labels say nothing: only the teacher can teach
    noisy = dataclasses.replace(tiny, labels=shuffled)
    test_images = tiny.images[~train]
    student = fit(_cfg(tmp_path, "student", teacher=str(teacher), distill_weight=1.0, seed=1), dataset=noisy)
    alone = fit(_cfg(tmp_path, "alone", seed=1), dataset=noisy)
    assert _agreement(student, teacher, test_images) >= 0.9
    assert _agreement(alone, teacher, test_images) < 0.7
    config = yaml.safe_load((student / "config.yaml").read_text())
    assert earlier_stages(config) == [teacher]  # the teacher's training counts in the student's cost


def test_earlier_stages_follow_both_the_warm_start_and_the_teacher_once(tmp_path):
    def run(name: str, **config) -> str:
        d = tmp_path / name
        d.mkdir()
        (d / "summary.json").write_text("{}")
        (d / "config.yaml").write_text(yaml.safe_dump(config))
        return str(d / "best.pt")

    base = run("base")
    teacher = run("teacher", pretrained=base)
    stage1 = run("stage1", pretrained=base)
    stages = earlier_stages({"pretrained": stage1, "teacher": teacher})
    assert [s.name for s in stages] == ["stage1", "teacher", "base"]


def test_bad_teachers_are_one_line_config_errors(tmp_path, tiny):
    with pytest.raises(ConfigError, match="distill_weight"):
        _cfg(tmp_path, "w", distill_weight=1.5)
    with pytest.raises(ConfigError, match="distill_temperature"):
        _cfg(tmp_path, "t", distill_temperature=0)
    with pytest.raises(ConfigError, match="teacher checkpoint not found"):
        fit(_cfg(tmp_path, "missing", teacher=str(tmp_path / "nope.pt")), dataset=tiny)
    (tmp_path / "junk.pt").write_bytes(b"junk\n")
    with pytest.raises(ConfigError, match="teacher cannot read checkpoint"):
        fit(_cfg(tmp_path, "corrupt", teacher=str(tmp_path / "junk.pt")), dataset=tiny)
    teacher = fit(_cfg(tmp_path, "teacher", epochs=1), dataset=tiny)
    three = make_dataset(per_class=8, size=24, classes=EMOTIONS[:3])
    with pytest.raises(ConfigError, match="predicts"):
        fit(_cfg(tmp_path, "classes", teacher=str(teacher)), dataset=three)
    with pytest.raises(ConfigError, match="takes 24x24"):
        fit(_cfg(tmp_path, "size", image_size=32, teacher=str(teacher)),
            dataset=make_dataset(per_class=8, size=32, classes=EMOTIONS[:4]))
