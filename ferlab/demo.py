"""The main job on bundled defaults (`ferlab demo`, `make demo`): data audit, predict and explain with the bundled
model on example photos that ship with scikit-image, and one HTML page that shows it all."""

from __future__ import annotations

import argparse
import base64
import contextlib
import html
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ferlab.io import atomic_write_text

__all__ = ["example_photos", "demo_html", "run_demo"]


def example_photos(out: Path) -> list[Path]:
    """Write the example inputs: scikit-image's astronaut (a public-domain NASA portrait, smiling) and a two-face
    group composed from it (one mirrored and darker), so that detection of several faces is shown too."""
    import cv2
    from skimage import data

    out.mkdir(parents=True, exist_ok=True)
    face = data.astronaut()
    group = np.full((420, 900, 3), 70, np.uint8)
    small = cv2.resize(face, (380, 380), interpolation=cv2.INTER_AREA)
    group[20:400, 40:420] = small
    group[20:400, 480:860] = (small[:, ::-1] * 0.7).astype(np.uint8)
    paths = [out / "astronaut.png", out / "group.png"]
    for path, image in zip(paths, (face, group), strict=True):
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return paths


def _json_lines(fn: Callable[[list[str]], int], argv: list[str]) -> tuple[int, list[dict]]:
    """Run a ferlab command in-process and parse the JSON lines it prints."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = fn(argv)
    return code, [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def _img(path: Path, width: int = 360) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" width="{width}" alt="{html.escape(path.name)}">'


def demo_html(predictions: list[dict], explanations: list[dict], predict_dir: Path, audit_dir: Path) -> str:
    """One self-contained page: annotated photos with probabilities, Grad-CAM overlays with region shares."""
    esc = html.escape
    parts = ["<!doctype html><meta charset='utf-8'><title>ferlab demo</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:2px 8px}"
             "figure{display:inline-block;margin:8px}</style>", "<h1>ferlab demo</h1>",
             "<p>The bundled model on example photos: faces found, emotions, and which facial regions drove each "
             "answer. Regenerate with <code>make demo</code>.</p>", "<h2>Predictions</h2>"]
    for rec in predictions:
        name = Path(rec["path"]).name
        annotated = predict_dir / f"{Path(rec['path']).stem}.annotated.png"
        picture = _img(annotated if annotated.is_file() else Path(rec["path"]), 480)
        rows = "".join(f"<tr><td>face {k}</td><td>{esc(f['label'])}</td><td>" + ", ".join(
            f"{esc(c)} {p:.2f}" for c, p in sorted(f["probs"].items(), key=lambda kv: -kv[1])[:3]) + "</td></tr>"
            for k, f in enumerate(rec.get("faces") or []))
        parts.append(f"<figure>{picture}<figcaption>{esc(name)}"
                     f"{'<br>error: ' + esc(rec['error']) if rec.get('error') else ''}<table>{rows}</table>"
                     "</figcaption></figure>")
    parts.append("<h2>Explanations (Grad-CAM, share of attribution per facial region)</h2>")
    for rec in explanations:
        for k, face in enumerate(rec.get("faces") or []):
            overlay = Path(face.get("overlay", ""))
            regions = face.get("regions") or {}
            table = "".join(f"<tr><td>{esc(r)}</td><td>{v:.2f}</td></tr>"
                            for r, v in sorted(regions.items(), key=lambda kv: -kv[1]))
            picture = _img(overlay, 192) if overlay.is_file() else ""
            parts.append(f"<figure>{picture}<figcaption>{esc(Path(rec['path']).name)} face {k}: "
                         f"{esc(str(face.get('predicted', '')))}<table>{table}</table></figcaption></figure>")
    audit_html = audit_dir / "audit.html"
    if audit_html.is_file():
        parts.append(f"<h2>Data audit</h2><p>See <a href='{esc(str(audit_html.name))}'>the audit report</a> "
                     "of the synthetic example dataset.</p>")
    return "\n".join(parts)


def run_demo(out: Path, per_class: int = 30) -> Path:
    """Every step of the demo; returns the HTML report's path."""
    from ferlab.cli.data_cmd import run_audit, run_stats
    from ferlab.cli.main import main as ferlab
    from ferlab.data.synthetic import synthetic_faces, write_image_folder

    out.mkdir(parents=True, exist_ok=True)
    source = out / "synthetic_faces.zip"
    print(f"[1/5] generating {per_class} synthetic faces per class -> {source}")
    write_image_folder(synthetic_faces(n_per_class=per_class, seed=0), source, layout="fer2013")
    print("[2/5] importing and auditing")
    run_audit(argparse.Namespace(source=str(source), json=False, out=str(out / "audit"), exclude="duplicates,blank",
                                 image_size=48, no_near_duplicates=False))
    run_stats(argparse.Namespace(source=str(source), out=str(out / "stats"), json=False, image_size=48))
    print("[3/5] example photos")
    photos = [str(p) for p in example_photos(out / "examples")]
    print("[4/5] predict with the bundled model")
    code, predictions = _json_lines(ferlab, ["predict", *photos, "--json", "--out", str(out / "predict")])
    for rec in predictions:
        print(f"  {Path(rec['path']).name}: " + (rec["error"] or ", ".join(f["label"] for f in rec["faces"])))
    print("[5/5] explain with the bundled model")
    _, explanations = _json_lines(ferlab, ["explain", *photos, "--json", "--out", str(out / "explain")])
    report = out / "index.html"
    atomic_write_text(report, demo_html(predictions, explanations, out / "predict", out / "audit"))
    if code != 0:
        print("ferlab demo: prediction failed on every example photo", flush=True)
    print(f"done: open {report}")
    return report
