"""`ferlab data audit|stats SOURCE`: inspect a face dataset without modifying it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run_audit", "run_stats"]


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="audit a dataset or print its statistics")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    audit = sub.add_parser("audit", help="find corrupt files, blanks, duplicates, leakage, label conflicts, imbalance")
    audit.add_argument("source", help="FER2013 zip/folder/CSV or a class-per-folder dataset (folder or zip)")
    audit.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    audit.add_argument("--out", default=None, help="write audit.json, audit.txt and PNG pictures into this folder")
    audit.add_argument("--exclude", default=None,
                       help="clean policy, comma-separated from duplicates,blank,conflicts,leakage: writes "
                            "OUT/clean.json, a manifest for `ferlab train --set manifest=...` (sources untouched)")
    audit.add_argument("--image-size", type=int, default=48, help="decode size (default 48)")
    audit.add_argument("--no-near-duplicates", action="store_true", help="skip the perceptual-hash search")
    audit.set_defaults(func=run_audit)

    stats = sub.add_parser("stats", help="images per split and class, with a bar chart")
    stats.add_argument("source", help="dataset source")
    stats.add_argument("--out", default=None, help="write class_distribution.png here")
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")
    stats.add_argument("--image-size", type=int, default=48, help="decode size (default 48)")
    stats.set_defaults(func=run_stats)


def _policy(text: str | None) -> list[str]:
    from ferlab.data.audit import CLEAN_POLICIES
    from ferlab.errors import ConfigError

    items = [p.strip().lower() for p in (text or "").split(",") if p.strip()]
    unknown = [p for p in items if p not in CLEAN_POLICIES]
    if unknown:
        raise ConfigError(f"unknown --exclude item(s) {', '.join(unknown)}; choose from {', '.join(CLEAN_POLICIES)}")
    return items


def _class_table(source: str, num_images: int, classes: list[str], counts: dict[str, dict[str, int]]) -> list[str]:
    """Images per split and class as aligned text lines; a column is as wide as its longest name."""
    width = max([10] + [len(c) + 2 for c in classes])
    lines = [f"{source}: {num_images} images",
             f"{'split':<14}" + "".join(f"{c:>{width}}" for c in classes) + f"{'total':>10}"]
    for split, row in counts.items():
        lines.append(f"{split:<14}" + "".join(f"{row[c]:>{width}}" for c in classes) + f"{sum(row.values()):>10}")
    return lines


def _table(report) -> str:  # noqa: ANN001
    lines = _class_table(report.source, report.num_images, report.classes, report.class_counts)
    d = report.to_dict()
    lines += [
        f"corrupt files            {d['corrupt_files_count']}",
        f"refused entries          {len(report.refused_entries)}",
        f"blank / near-constant    {d['blank_images_count']}",
        f"exact duplicate groups   {d['exact_duplicate_groups_count']} ({d['exact_duplicate_images']} images)",
        f"cross-split (leakage)    {d['cross_split_duplicate_groups_count']} groups",
        f"label-conflict groups    {d['label_conflict_groups_count']}",
        "near-duplicate groups    " + ("not searched (--no-near-duplicates)" if d["near_duplicate_groups"] is None
                                        else str(d["near_duplicate_groups_count"])),
        f"unlabelled (no class)    {d['unlabelled_files_count']}",
        f"skipped (hidden/other)   {report.skipped_files}",
    ]
    if report.train_by_default:
        lines.append(f"in no split folder       {report.train_by_default} (counted as train)")
    if report.imbalance:
        lines.append(f"imbalance                largest/smallest {report.imbalance['largest_to_smallest']}, smallest "
                     f"{report.imbalance['smallest_class']} ({report.imbalance['smallest_share']:.1%})")
    return "\n".join(lines)


def run_audit(args: argparse.Namespace) -> int:
    from ferlab.data import load
    from ferlab.data.audit import audit, clean_exclusions
    from ferlab.data.manifest import write_manifest
    from ferlab.data.plots import class_distribution_png, duplicate_gallery_png, sample_grid_png
    from ferlab.io import atomic_write_json, atomic_write_text

    policy = _policy(args.exclude)
    if policy and not args.out:  # checked before a long decode
        from ferlab.errors import ConfigError

        raise ConfigError("--exclude writes a manifest: give --out DIR too")
    ds = load(args.source, image_size=args.image_size, progress=not args.json)
    report = audit(ds, near_duplicates=not args.no_near_duplicates)
    text = _table(report)
    if args.out:
        out = Path(args.out)
        atomic_write_json(out / "audit.json", report.to_dict())
        atomic_write_text(out / "audit.txt", text + "\n")
        class_distribution_png(report.class_counts, out / "class_distribution.png")
        sample_grid_png(ds, out / "samples.png")
        duplicate_gallery_png(ds, report.exact_duplicate_groups, out / "duplicates.png")
        if policy:
            excluded = clean_exclusions(ds, report, policy)
            write_manifest(out / "clean.json", ds, excluded, policy)
            print(f"ferlab: clean manifest excludes {len(excluded)} images: {out / 'clean.json'}", file=sys.stderr)
        else:
            _drop_stale_manifest(out / "clean.json", ds.fingerprint)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(text)
    return 0


def _drop_stale_manifest(path: Path, fingerprint: str) -> None:
    """An earlier audit's clean.json of other data would sit beside this audit.json as if it belonged to it."""
    import warnings

    from ferlab.data.manifest import read_manifest
    from ferlab.errors import DataError

    if not path.is_file():
        return
    try:
        stale = read_manifest(path).get("fingerprint") != fingerprint
    except DataError:  # unreadable or not a manifest: not this audit's either
        stale = True
    if stale:
        path.unlink()
        warnings.warn(f"removed {path}: a cleaning manifest of an earlier audit of other data", stacklevel=2)


def run_stats(args: argparse.Namespace) -> int:
    from ferlab.data import load
    from ferlab.data.plots import class_distribution_png

    ds = load(args.source, image_size=args.image_size, progress=not args.json)
    counts = ds.class_counts()
    if args.out:
        class_distribution_png(counts, Path(args.out) / "class_distribution.png")
    left_out = _left_out(ds.meta)
    labelled = int((ds.labels >= 0).sum())  # what the table sums to, as in `data audit`; unlabelled are a note
    by_default = int(ds.meta.get("train_by_default", 0))
    if args.json:
        print(json.dumps({"source": ds.source, "num_images": labelled, "classes": list(ds.classes),
                          "class_counts": counts, **left_out, "train_by_default_count": by_default}))
        return 0
    print("\n".join(_class_table(ds.source, labelled, list(ds.classes), counts)))
    notes = [f"{n} {what.removesuffix('_count').replace('_', ' ')}" for what, n in left_out.items() if n]
    if notes:
        print("not in the table: " + ", ".join(notes) + " (listed by `ferlab data audit`)")
    if by_default:
        print(f"{by_default} images in no split folder are counted as train")
    return 0


def _left_out(meta: dict) -> dict[str, int]:
    """Counts of what a source held but the class table does not show, from the loader's metadata."""
    return {"corrupt_files_count": len(meta.get("corrupt_files", [])),
            "refused_entries_count": len(meta.get("refused_entries", [])),
            "unlabelled_files_count": len(meta.get("unlabelled_files", [])),
            "skipped_files_count": int(meta.get("skipped_files", 0))}
