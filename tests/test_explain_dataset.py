"""Dataset-level explanation: report files, exact aggregation, trust verdicts, features PNGs, one-line errors."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from explain_helpers import CLASSES, LinearTwoClass, train_tiny_run
from PIL import Image

from ferlab.cli.main import main
from ferlab.data.synthetic import synthetic_faces, write_image_folder
from ferlab.explain.aggregate import GROUPS, SHARE_NAMES, GroupAccumulator, batch_region_shares, stratified_indices
from ferlab.explain.faithfulness import BASELINES, faithfulness, random_attributions
from ferlab.explain.methods import register_method, unregister_method
from ferlab.explain.regions import LABELS, region_label_map, region_shares
from ferlab.explain.trust import faithfulness_entry
from ferlab.labels import EMOTIONS

SUMMARY_KEYS = {"regions", "faithfulness", "sanity", "n_images", "accuracy"}
FAITH_KEYS = {"deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc", "better_than_random"}


def _save_random_checkpoint(path, name: str, classes=CLASSES, seed: int = 0):  # noqa: ANN001, ANN202
    from ferlab.models import create_model
    from ferlab.train.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    model = create_model(name, num_classes=len(classes))
    return save_checkpoint(path, {"model_name": name, "model_kwargs": {}, "classes": list(classes),
                                  "image_size": 48, "model_state": model.state_dict()})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A sequential_small trained one epoch on synthetic faces (folder with train/test), a random cbam_resnet."""
    root = tmp_path_factory.mktemp("explain-dataset")
    cbam = _save_random_checkpoint(root / "cbam.pt", "cbam_resnet")
    return {**train_tiny_run(root, n_per_class=15, seed=1), "cbam": cbam}


def _error_line(capsys) -> str:  # noqa: ANN001
    """The one `ferlab: error:` line on stderr (progress bars may share stderr; a traceback never does)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("ferlab:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("ferlab: error: ")
    return lines[0]


def _report(tiny, out, *extra):  # noqa: ANN001, ANN202
    return main(["explain", "--data", str(tiny["data"]), "--model", str(tiny["ckpt"]), "--out", str(out),
                 "--faithfulness-samples", "9", *extra])


# ---- the report ---------------------------------------------------------------------------------------------


def test_dataset_report_files_and_summary(tiny, tmp_path, capsys):
    out = tmp_path / "rep"
    assert _report(tiny, out, "--methods", "gradcam,occlusion", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    for name in ("report.html", "mean_heatmaps.png", "regions.csv", "regions.json", "regions.png",
                 "faithfulness.json", "faithfulness.png", "summary.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary == printed and SUMMARY_KEYS <= set(summary)
    assert summary["n_images"] == tiny["n_test"] and 0.0 <= summary["accuracy"] <= 1.0
    counts = summary["counts"]
    assert sum(c["correct"] + c["mistakes"] for c in counts.values()) == tiny["n_test"]
    assert summary["accuracy"] == pytest.approx(sum(c["correct"] for c in counts.values()) / tiny["n_test"])
    assert set(summary["regions"]) == set(CLASSES)
    rows = [r for r in summary["regions"].values() if r is not None]
    assert rows, "no emotion with a correct prediction"
    for row in rows:
        assert set(row) == set(SHARE_NAMES) and sum(row.values()) == pytest.approx(1.0, abs=1e-6)
    for emotion, row in summary["regions"].items():  # an emotion without correct predictions has no row
        assert (row is None) == (counts[emotion]["correct"] == 0)
    assert set(summary["faithfulness"]) == set(summary["sanity"]) == {"gradcam", "occlusion"}
    for entry in summary["faithfulness"].values():
        assert FAITH_KEYS <= set(entry) and isinstance(entry["better_than_random"], bool)
    for entry in summary["sanity"].values():
        assert -1.0 <= entry["rank_correlation"] <= 1.0 and isinstance(entry["passed"], bool)
    with open(out / "regions.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(CLASSES) * len(GROUPS)
    for row in table:
        if row["brows"]:
            assert sum(float(row[r]) for r in SHARE_NAMES) == pytest.approx(1.0, abs=1e-5)
    regions = json.loads((out / "regions.json").read_text())
    assert regions["groups"]["correct"]["regions"] == summary["regions"]
    html = (out / "report.html").read_text()
    assert "Which facial regions drive each emotion" in html and "data:image/png;base64," in html
    assert "occlusion" in html and "rank correlation" in html
    curves = json.loads((out / "faithfulness.json").read_text())["methods"]["gradcam"]["curves"]
    assert len(curves["fractions"]) == len(curves["deletion"]) == len(curves["random_insertion"])


def test_limit_and_text_summary(tiny, tmp_path, capsys):
    assert _report(tiny, tmp_path / "rep", "--limit", "4", "--faithfulness-samples", "0") == 0
    text = capsys.readouterr().out
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["n_images"] == 4 and summary["limit"] == 4
    assert summary["faithfulness"] == {} and summary["trust_faces"] == 0
    assert "report written to" in text and "accuracy" in text


def test_the_val_split_is_the_carve_the_model_was_selected_on(tiny, tmp_path, capsys):
    from ferlab.data import load
    from ferlab.evaluate.run import with_training_validation
    from ferlab.train.checkpoint import load_checkpoint

    assert _report(tiny, tmp_path / "rep", "--split", "val", "--faithfulness-samples", "0") == 0
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    carve = with_training_validation(load(tiny["data"], progress=False), load_checkpoint(tiny["ckpt"])["config"])
    assert summary["n_images"] == int((carve.splits == "val").sum()) > 0


def test_the_report_predicts_with_the_tta_it_is_given_and_says_so(tiny, tmp_path):
    from ferlab.data import load
    from ferlab.explain.dataset_report import explain_dataset
    from ferlab.predict.predictor import Predictor

    clf = Predictor.from_checkpoint(tiny["ckpt"]).classifier
    test = load(tiny["data"], progress=False).split("test")
    for tta in ("none", "flip"):
        result = explain_dataset(clf, test, tta=tta, faithfulness_samples=0)
        proba = np.asarray(clf.predict_proba(test.images, tta=tta))
        column = {c: i for i, c in enumerate(clf.classes)}
        truth = np.array([column[test.classes[k]] for k in test.labels])
        assert result.tta == tta and result.summary()["tta"] == tta
        assert result.accuracy == pytest.approx(float((proba.argmax(1) == truth).mean()))


# ---- pure aggregation ---------------------------------------------------------------------------------------


def test_mean_heatmap_accumulation_is_exact():
    rng = np.random.default_rng(0)
    heat = rng.random((10, 6, 6))
    faces = rng.integers(0, 256, (10, 6, 6))
    true = np.array([0, 0, 1, 1, 1, 0, 2, 0, 1, 0])
    correct = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1], dtype=bool)
    shares = rng.random((10, len(SHARE_NAMES)))
    shares /= shares.sum(axis=1, keepdims=True)
    shares[3] = 0  # a map without positive mass: counted in the heat maps, not in the shares
    acc = GroupAccumulator(n_classes=4, size=6)
    acc.add(heat[:4], faces[:4], true[:4], correct[:4], shares[:4])  # two batches = one
    acc.add(heat[4:], faces[4:], true[4:], correct[4:], shares[4:])
    means, mean_faces, mean_shares = acc.mean_heatmaps(), acc.mean_faces(), acc.mean_shares()
    for c in range(4):
        for g, ok in enumerate((True, False)):
            cell = (true == c) & (correct == ok)
            assert acc.count[c, g] == cell.sum()
            if not cell.any():
                assert np.isnan(means[c, g]).all() and np.isnan(mean_shares[c, g]).all()
                continue
            np.testing.assert_allclose(means[c, g], heat[cell].mean(axis=0), rtol=0, atol=1e-12)
            np.testing.assert_allclose(mean_faces[c, g], faces[cell].mean(axis=0), rtol=0, atol=1e-9)
            with_mass = cell & (shares.sum(axis=1) > 0)
            np.testing.assert_allclose(mean_shares[c, g], shares[with_mass].mean(axis=0), atol=1e-12)
            assert mean_shares[c, g].sum() == pytest.approx(1.0)
    assert acc.n_images == 10 and acc.n_correct == int(correct.sum())


def test_batch_region_shares_equal_per_map_shares():
    labels = region_label_map(48)
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(5, 48, 48))
    raw[2] = -1.0  # no positive mass
    batch = batch_region_shares(raw, labels)
    for i in range(5):
        single = region_shares(raw[i], labels)
        np.testing.assert_allclose(batch[i], [single[name] for name in SHARE_NAMES], atol=1e-12)
    assert batch[2].sum() == 0 and batch[0].sum() == pytest.approx(1.0)
    assert LABELS[0] == SHARE_NAMES[-1]


def test_stratified_limit_is_proportional_deterministic_and_covers_classes():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 9 + [3] * 1)
    picked = stratified_indices(labels, 20)
    assert len(picked) == 20 and len(set(picked.tolist())) == 20
    counts = np.bincount(labels[picked], minlength=4)
    assert counts.tolist() == [11, 6, 2, 1]  # one each first, then proportional by largest remainder
    assert np.array_equal(picked, stratified_indices(labels, 20))
    assert len(stratified_indices(labels, 2)) == 2 and len(stratified_indices(labels, 500)) == 100


# ---- trust verdicts -----------------------------------------------------------------------------------------



def test_random_maps_are_not_better_than_random_but_exact_contributions_are():
    torch.manual_seed(0)
    w = torch.randn(12, 12)
    model = LinearTwoClass(w)
    x = torch.randn(30, 1, 12, 12) * 3
    targets = torch.zeros(30, dtype=torch.long)
    same = faithfulness(model, x, targets, random_attributions((30, 12, 12), seed=0), method="random")
    entry = faithfulness_entry(same)
    assert entry["deletion_auc"] == entry["random_deletion_auc"] and not entry["better_than_random"]
    assert entry["p_value"] == 1.0
    other = faithfulness_entry(faithfulness(model, x, targets, random_attributions((30, 12, 12), seed=5)))
    assert not other["better_than_random"]
    blurred = BASELINES["blur"](x)
    exact = ((x - blurred)[:, 0] * w).detach().numpy()  # each pixel's true effect on the logit vs the baseline
    good = faithfulness_entry(faithfulness(model, x, targets, exact, method="exact"))
    assert good["better_than_random"] and good["p_value"] < 0.05
    assert good["deletion_auc"] < good["random_deletion_auc"] and good["insertion_auc"] > good["random_insertion_auc"]


@pytest.fixture
def edge_method():
    def edges(model, x, targets):  # noqa: ANN001, ANN202 - looks at the image only, never at the model
        gy, gx = np.gradient(x[:, 0].detach().numpy(), axis=(1, 2))
        return np.hypot(gx, gy)

    register_method("edges_test")(edges)
    yield "edges_test"
    unregister_method("edges_test")


def test_sanity_flags_a_model_independent_method(tiny, tmp_path, edge_method, capsys):
    assert _report(tiny, tmp_path / "rep", "--methods", edge_method, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    sanity = summary["sanity"][edge_method]
    assert sanity["rank_correlation"] == pytest.approx(1.0) and sanity["passed"] is False
    assert "FLAGGED: maps ignore the model" in (tmp_path / "rep" / "report.html").read_text()


def test_randomised_copy_of_a_fresh_model_still_depends_on_its_input():
    from ferlab.explain.sanity import randomised_copy
    from ferlab.models import create_model

    torch.manual_seed(0)
    clone = randomised_copy(create_model("cbam_resnet"))  # fresh BatchNorm weights are all 1: must not become 0
    bn = clone.stem.bn.weight
    assert torch.all(bn == 1)
    with torch.inference_mode():
        out = clone(torch.randn(2, 1, 48, 48))
    assert not torch.allclose(out[0], out[1])


# ---- features -----------------------------------------------------------------------------------------------


def test_cbam_filters_grid_shows_the_facial_kernels():
    from ferlab.explain.features import first_layer_filters
    from ferlab.models import create_model
    from ferlab.models.cbam import FACIAL_KERNEL_NAMES, facial_kernels

    banks = first_layer_filters(create_model("cbam_resnet"))
    assert banks[0].layer == "stem.facial" and banks[0].names == FACIAL_KERNEL_NAMES
    np.testing.assert_allclose(banks[0].weights, facial_kernels(1)[:, 0].numpy(), atol=1e-6)
    assert banks[1].layer == "stem.learned" and banks[0].weights.shape[1:] == (7, 7)


@pytest.mark.parametrize("which", ["cbam", "ckpt"])
def test_features_pngs_for_an_image(tiny, tmp_path, capsys, which):
    out = tmp_path / "feat"
    assert main(["explain", str(tiny["crop"]), "--model", str(tiny[which]), "--no-detect", "--features",
                 "--out", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    for kind in ("filters", "activations"):
        png = out / f"face.{kind}.png"
        assert record["features"][kind] == str(png)
        pixels = np.asarray(Image.open(png).convert("L"))
        assert pixels.shape[0] > 200 and pixels.std() > 10


def test_activation_layers_follow_the_stages():
    from ferlab.explain.features import activation_maps, default_layers
    from ferlab.models import create_model

    model = create_model("cbam_resnet").eval()
    layers = default_layers(model)
    assert layers == ["stem.facial", "stages.0", "stages.1", "stages.2"]
    acts = activation_maps(model, torch.randn(1, 1, 48, 48), layers)
    assert acts["stem.facial"].shape == (10, 24, 24) and acts["stages.2"].shape[0] == 256


# ---- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (["--method", "saliency-magic"], "unknown explanation method"),
    (["--methods", "gradcam,nope"], "unknown explanation method 'nope'"),
    (["--target", "contempt"], "not one of this model's classes"),
    (["--split", "private_test"], "split 'private_test' is empty"),
    (["--limit", "0"], "must be >= 1"),
])
def test_bad_dataset_input_is_one_line_error(tiny, tmp_path, capsys, extra, message):
    assert _report(tiny, tmp_path / "rep", *extra) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "rep" / "summary.json").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["explain"], "nothing to explain"),
    (["explain", "IMG", "--data", "DATA", "--out", "o"], "not both"),
    (["explain", "--data", "DATA"], "--data needs --out"),
    (["explain", "IMG", "--limit", "3"], "--limit: only for the dataset report"),
    (["explain", "IMG", "--features"], "--features needs --out"),
    (["explain", "--data", "DATA", "--out", "o", "--features"], "--features works on IMAGE files"),
])
def test_bad_mode_combinations_are_one_line_errors(tiny, capsys, args, message):
    args = [str(tiny["crop"]) if a == "IMG" else str(tiny["data"]) if a == "DATA" else a for a in args]
    assert main(args) == 2
    assert message in _error_line(capsys)


def test_model_without_cam_layer_is_one_line_error(tiny, tmp_path, capsys, monkeypatch):
    from ferlab.models import _registry

    cfg = _registry._CONFIGS["sequential_small"]
    monkeypatch.setitem(_registry._CONFIGS, "sequential_small", replace(cfg, cam_layer=""))
    assert _report(tiny, tmp_path / "rep") == 2
    assert "declares no CAM layer" in _error_line(capsys)
    assert _report(tiny, tmp_path / "rep2", "--method", "occlusion", "--faithfulness-samples", "0") == 0


def test_data_without_a_shared_class_is_one_line_error(tiny, tmp_path, capsys):
    other = write_image_folder(synthetic_faces(n_per_class=3, classes=("fear", "surprise"), seed=2),
                               tmp_path / "other", "fer2013")
    assert main(["explain", "--data", str(other), "--model", str(tiny["ckpt"]), "--out", str(tmp_path / "r")]) == 2
    assert "share no class" in _error_line(capsys)


# ---- shared data --------------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_dataset_report_on_shared_fer2013(fer2013_zip, tmp_path, capsys):
    ckpt = _save_random_checkpoint(tmp_path / "random.pt", "sequential_small", classes=EMOTIONS)
    out = tmp_path / "rep"
    assert main(["explain", "--data", str(fer2013_zip), "--model", str(ckpt), "--limit", "70",
                 "--faithfulness-samples", "14", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_images"] == 70 and summary["classes"] == list(EMOTIONS)
    per_class = {e: c["correct"] + c["mistakes"] for e, c in summary["counts"].items()}
    assert sum(per_class.values()) == 70 and min(per_class.values()) >= 1  # stratified: every emotion
    assert max(per_class, key=per_class.get) == "happy"  # the largest class of the test split
    assert summary["faithfulness"]["gradcam"]["n_faces"] == 14
    assert (out / "report.html").is_file() and (out / "mean_heatmaps.png").is_file()
