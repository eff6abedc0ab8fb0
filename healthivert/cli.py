"""The ``healthivert`` command line: thin entry points over the library.

Bad input ends with one line on stderr and exit code 2; library code never exits or prints.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from healthivert import __version__
from healthivert.errors import InputError

EXIT_INPUT = 2


def _progress(prefix: str):
    def report(done: int, total: int, what: str) -> None:
        print(f"{prefix} [{done}/{total}] {what}", file=sys.stderr, flush=True)

    return report


def _table(rows: Sequence[Sequence], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*cells[0]), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in cells[1:]]
    return "\n".join(lines)


def cmd_phantom(args: argparse.Namespace) -> int:
    from healthivert.phantom import PhantomConfig, write_cohort

    cfg = PhantomConfig(top=args.top, bottom=args.bottom, slice_mm=args.slice_mm,
                        in_plane_mm=args.in_plane_mm, orientation=args.orientation)
    cfg.labels()  # checks the range before any work
    subjects = write_cohort(args.out, args.n, args.seed, cfg, _progress("phantom"))
    print(f"wrote {len(subjects)} phantom studies in the VerSe layout under {args.out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from healthivert.info import describe_image, format_info

    info = describe_image(args.image, args.series)
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from healthivert.phantom import FractureSpec, PhantomConfig, make_phantom, write_phantom
    from healthivert.pipeline import RunOptions, run_study

    cfg = PhantomConfig(
        top="T10", bottom="L4",
        fractures=(FractureSpec("T12", 2, "wedge"), FractureSpec("L1", 3, "crush"),
                   FractureSpec("L3", 1, "biconcave")),
        slice_mm=1.5, deformity_rate=0.0,
    )
    if args.from_ct:  # down to L5, so the sacrum is in view to anchor the labels
        cfg = replace(cfg, bottom="L5")
    print("1/2 writing a synthetic CT study with three known fractures ...", file=sys.stderr)
    study = make_phantom(cfg, args.seed, subject="sub-demo")
    paths = write_phantom(study, Path(args.out) / "phantom")
    print(f"synthetic study {study.subject}: {' x '.join(map(str, study.ct.shape))} voxels at "
          f"{' x '.join(f'{s:g}' for s in study.ct.spacing_mm)} mm, in {paths['ct'].parent.parent.parent}")
    out = Path(args.out) / "results" / study.subject
    options = RunOptions(synthesizer=args.synthesizer, grader=args.grader)
    if args.from_ct:
        print("2/2 segmenting the CT and grading it (no mask given) ...", file=sys.stderr)
        result = run_study(out, ct_path=paths["ct"], options=options)
    else:
        print("2/2 grading it (mask + CT) ...", file=sys.stderr)
        result = run_study(out, mask_path=paths["mask"], ct_path=paths["ct"], centroids_path=paths["centroids"],
                           options=options)
    print()
    _print_result(result, out)
    truth = {v["label"]: v for v in study.truth["vertebrae"]}
    agree = sum(v.genant_grade == truth.get(v.label, {}).get("genant_grade") for v in result["vertebrae"])
    print("\nknown truth: " + ", ".join(
        f"{v['name']} grade {v['genant_grade']}" + (f" ({v['morphology']})" if v["morphology"] else "")
        for v in study.truth["vertebrae"]))
    print(f"grades agreeing with the truth: {agree} of {len(result['vertebrae'])}")
    # the command as this user can type it: bare when on PATH, else as it was invoked (.venv/bin/...)
    exe = "healthivert" if shutil.which("healthivert") else sys.argv[0]
    print(f"\nreview and export the grades in the viewer: {exe} view {Path(args.out) / 'results'}")
    return 0


def _print_result(result: dict, out: Path) -> None:
    from healthivert.sections import SECTIONS

    rows = []
    for v in result["vertebrae"]:
        h, grade = v.heights_mm, v.genant_grade
        prob = v.probabilities.get(grade) if grade is not None else None
        rows.append((
            v.name, "-" if grade is None else grade, "-" if prob is None else f"{prob:.2f}",
            *(f"{100 * v.rhlv.get(s):.0f}" if v.rhlv and v.rhlv.get(s) is not None else "-" for s in SECTIONS),
            *(f"{h.original.get(s):.1f}/{h.pseudo_healthy.get(s):.1f}" if h and h.original.get(s) is not None else "-"
              for s in SECTIONS),
            "-" if v.trabecular_hu is None else f"{v.trabecular_hu:.0f}",
            v.status,
        ))
    print(_table(rows, ("vertebra", "grade", "p", "RHLV ant %", "mid %", "post %", "H ant mm",
                        "H mid mm", "H post mm", "HU", "status")))
    others = [f"{v.name} by the {v.grader}" for v in result["vertebrae"] if v.grader and v.grader != result["grader"]]
    also = f" ({', '.join(others)}: see its status)" if others else ""
    print(f"\nheights: measured / pseudo-healthy ({result['synthesizer']}); grades by the {result['grader']} grader"
          f"{also}")
    print(f"results in {out}: result.json, vertebrae.csv, height_loss/*.png|.nii.gz")
    labels = result.get("labels") or {}
    if labels:
        print(f"labels: {labels['source']}, {_anchor_text(labels)}")
    for note in result.get("notes") or []:
        print(f"note: {note}")


def _anchor_text(labels: dict) -> str:
    """How a study's labels were anchored, with a warning when they are a guess."""
    warn = "" if labels.get("anchored", True) else " -- LABELS UNCERTAIN: check them (--first-label corrects)"
    return f"anchor: {labels['anchor']}{warn}"


def _models(args: argparse.Namespace) -> str | None:
    """The --models folder, checked before any work (None: the shipped models)."""
    from healthivert.models import model_set

    if args.models is None:
        return None
    return str(model_set(args.models).folder)


def cmd_run(args: argparse.Namespace) -> int:
    from healthivert.pipeline import RunOptions, run_study

    result = run_study(args.out, mask_path=args.mask, ct_path=args.ct, centroids_path=args.centroids,
                       options=RunOptions(synthesizer=args.synthesizer, grader=args.grader, models=_models(args),
                                          first_label=args.first_label),
                       study_id=args.study_id, progress=_progress("run") if args.verbose else None)
    _print_result(result, args.out)
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from healthivert.batch import discover_studies, format_progress, format_summary, plan_batch, run_batch
    from healthivert.pipeline import RunOptions

    specs = discover_studies(args.input)
    if args.dry_run:
        plan = plan_batch(specs, args.out)
        for s in plan.todo:
            print(f"run   {s.study_id}  {s.describe()}")
        for s in plan.done:
            print(f"skip  {s.study_id}  (done: {Path(args.out) / 'studies' / s.study_id / 'result.json'})")
        print(f"dry run: {len(plan.todo)} to run, {len(plan.done)} to skip (done) of {len(specs)} studies")
        return 0
    tty = sys.stderr.isatty()

    def show(p) -> None:  # one line rewritten in place on a terminal, a line per study otherwise
        last = p.finished >= p.total
        print(("\r\x1b[K" if tty else "") + format_progress(p), end="\n" if last or not tty else "",
              file=sys.stderr, flush=True)

    summary = run_batch(specs, args.out, workers=args.workers, scheduler=args.scheduler,
                        options=RunOptions(synthesizer=args.synthesizer, grader=args.grader, models=_models(args)),
                        progress=show)
    print(format_summary(summary))
    return 0 if summary.ok else 1


def cmd_segment(args: argparse.Namespace) -> int:
    from healthivert.io.centroids import centroids_from_mask, write_centroids
    from healthivert.io.images import check_output_image, load_ct, write_volume
    from healthivert.labels import VERSE_NAMES
    from healthivert.models import model_set
    from healthivert.pipeline import relabel, segment_study

    if args.weights is not None and args.models is not None:
        raise InputError("give --weights or --models, not both")
    check_output_image(args.out)
    weights = args.weights or (model_set(args.models).path("segmenter") if args.models else None)
    seg = segment_study(load_ct(args.ct, args.series), weights)
    mask, notes = seg.mask, list(seg.notes)
    labels = {"anchor": seg.anchor, "anchored": seg.anchored}
    if args.first_label:
        mask = relabel(mask, args.first_label, labels, notes)
    out = write_volume(mask, args.out)
    ctd = args.centroids_out or Path(str(out).replace(".nii.gz", "").replace(".nii", "") + "_ctd.json")
    cents = centroids_from_mask(mask)
    write_centroids(cents, ctd, mask, fmt="verse")
    print(f"mask: {out} ({', '.join(VERSE_NAMES[k] for k in sorted(cents))})")
    print(f"centroids: {ctd}")
    print(f"labels: {_anchor_text(labels)}")
    for note in notes:
        print(f"note: {note}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")  # metrics per eval
    if (args.calibrate_only or args.prepare_only) and args.what != "synthesizer":
        raise InputError("--calibrate-only and --prepare-only apply to the synthesizer only")
    if args.jobs < 1:
        raise InputError(f"--jobs must be >= 1; got {args.jobs}")
    if args.what == "segmenter":
        from healthivert.training.segmenter import load_segmenter_config, train_segmenter

        final = train_segmenter(load_segmenter_config(args.config), _progress("train"))
        print(f"segmenter trained: {final}")
        return 0
    if args.what == "synthesizer":
        from healthivert.training.synthesizer import load_synthesizer_config, train_synthesizer

        cfg = load_synthesizer_config(args.config)
        if args.prepare_only:
            from healthivert.training.synthesizer import prepare_phantom_cohort

            n = prepare_phantom_cohort(cfg, args.jobs, _progress("prepare"))
            print(f"{n} phantom studies cached in {Path(cfg.workdir) / 'cache'}")
            return 0
        if args.calibrate_only:
            from healthivert.training.gan_calibration import calibrate_synthesizer

            fit = calibrate_synthesizer(cfg, _progress("calibrate"))
            print(f"height calibration: {fit}\nweights: {cfg.output}")
            return 0
        final = train_synthesizer(cfg, _progress("train"))
        print(f"synthesizer trained: {final}\nweights: {cfg.output}")
        return 0
    from healthivert.training.config import load_grader_config
    from healthivert.training.grader import train_grader

    cfg = load_grader_config(args.config)
    out, report, df = train_grader(cfg, _progress("features"), args.jobs)
    print(f"trained on {report.n_vertebrae} vertebrae from {report.n_subjects} subjects; "
          f"grades {report.class_counts}")
    print(f"{report.folds}-fold subject-grouped CV macro-F1 {report.cv_macro_f1:.3f} with {report.best_params}")
    if not report.monotone:
        print("warning: no setting kept every grade from falling as the height loss rises; this model can "
              "grade a worse fracture lower (try more training vertebrae)")
    elif report.settings_refused:
        print(f"{report.settings_refused} setting(s) ahead of it in the {cfg.selection!r} order refused: "
              "a grade fell as the height loss rose")
    print(f"model: {out} (card: {Path(out).with_suffix('.json')})")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from healthivert.review import ResultsFolder, default_url
    from healthivert.review.launch import run_viewer, viewer_command, viewer_env, viewer_url

    folders = ResultsFolder.open(args.results)
    if not folders.studies:
        raise InputError(f"{args.results}: no study result folders (with result.json) found")
    command = viewer_command(args.port, args.address)
    print(f"HealthiVert viewer on {len(folders.studies)} studies in {folders.root}")
    print(f"reviews: {args.db or default_url(folders.root)}")
    if args.reviewer:
        print(f"reviewer: {args.reviewer}")
    print(f"open {viewer_url(args.port, args.address)} in a browser (Ctrl+C stops it)", flush=True)
    return run_viewer(command, viewer_env(folders.root, args.db, args.reviewer))  # SIGTERM / Ctrl-C stop the server too


def cmd_export(args: argparse.Namespace) -> int:
    from healthivert.review import ResultsFolder, ReviewStore, default_url, export_results

    folders = ResultsFolder.open(args.results)
    if not folders.studies:
        raise InputError(f"{args.results}: no study result folders (with result.json) found")
    store = ReviewStore(args.db or default_url(folders.root))
    out = args.out or folders.root / "export"
    summary = export_results(folders, store, out, _progress("export"))
    print(f"exported {summary.rows} vertebrae of {len(summary.reports)} studies to {summary.out}: "
          f"{summary.csv.name}, {summary.json.name}, <study>/report.html, <study>/height_loss/ ({summary.maps} maps)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from healthivert.evaluation import default_out_dir, evaluate_files, format_report, write_report

    report = evaluate_files(args.results, args.grades, args.split)
    out = args.out or default_out_dir(args.results)
    written = write_report(report, out)
    wrote = f"wrote {', '.join(p.name for p in written)} to {out}"
    if args.json:  # stdout stays pure JSON
        print(json.dumps(report.to_dict(), indent=1))
        print(wrote, file=sys.stderr)
    else:
        print(format_report(report) + "\n\n" + wrote)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="healthivert",
        description="Interpretable grading of osteoporotic vertebral compression fractures on CT.",
    )
    parser.add_argument("--version", action="version", version=f"healthivert {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="make a synthetic study with known fractures and process it")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--seed", type=int, default=7, help="phantom seed (default 7)")
    p.add_argument("--grader", default="svm", help="svm (default) or rule")
    p.add_argument("--synthesizer", default="prior", help="prior (default) or gan (HealthiVert-GAN)")
    p.add_argument("--from-ct", action="store_true", help="give the pipeline the CT only: segment it first")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="grade one study: a vertebra mask (and its CT)")
    p.add_argument("--out", required=True, type=Path, help="result folder (replaced when complete)")
    p.add_argument("--mask", type=Path, help="vertebra mask (VerSe or TotalSegmentator labels), NIfTI")
    p.add_argument("--ct", type=Path, help="CT, NIfTI file or DICOM folder (adds bone density and CT crops)")
    p.add_argument("--centroids", type=Path, help="centroid JSON (default: computed from the mask)")
    p.add_argument("--synthesizer", default="prior", help="pseudo-healthy synthesizer: prior (default, from the "
                   "neighbours) or gan (HealthiVert-GAN, needs the CT)")
    p.add_argument("--grader", default="svm", help="svm (default, shipped weights) or rule (Genant thresholds)")
    p.add_argument("--models", type=Path, default=None, help="folder of retrained models (any of grader_svm.skops, "
                   "grader_svm_gan.skops, synthesizer_gan.safetensors, segmenter_unet.safetensors); others shipped")
    p.add_argument("--study-id", default=None, help="study id (default: from the file name)")
    p.add_argument("--first-label", default=None, metavar="NAME",
                   help="the topmost vertebra's name (e.g. T9): shifts the mask's labels to match")
    p.add_argument("--verbose", action="store_true", help="report progress")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("batch", help="grade a cohort on Dask: resumable, one result folder per study")
    p.add_argument("input", type=Path, help="VerSe tree, folder of NIfTI files / DICOM series folders, or "
                   "manifest CSV (study_id,mask,ct,centroids)")
    p.add_argument("--out", required=True, type=Path, help="output folder: studies/<id>/, cohort.csv, failed.csv")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (instead of local)")
    p.add_argument("--models", type=Path, default=None, help="folder of retrained models (any of grader_svm.skops, "
                   "grader_svm_gan.skops, synthesizer_gan.safetensors, segmenter_unet.safetensors); others shipped")
    p.add_argument("--dry-run", action="store_true", help="list what would run and what is skipped as done")
    p.add_argument("--synthesizer", default="prior", help="pseudo-healthy synthesizer: prior (default, from the "
                   "neighbours) or gan (HealthiVert-GAN, needs the CT)")
    p.add_argument("--grader", default="svm", help="svm (default, shipped weights) or rule (Genant thresholds)")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("segment", help="CT to a VerSe-labelled vertebra mask and its centroids")
    p.add_argument("--ct", required=True, type=Path, help="CT, NIfTI file or DICOM folder")
    p.add_argument("--out", required=True, type=Path, help="mask to write (.nii.gz), on the CT's grid")
    p.add_argument("--centroids-out", type=Path, default=None, help="centroid JSON (default: beside the mask)")
    p.add_argument("--series", default=None, help="DICOM series UID when a folder holds several")
    p.add_argument("--weights", type=Path, default=None, help="segmenter weights (default: shipped)")
    p.add_argument("--first-label", default=None, metavar="NAME",
                   help="the topmost vertebra's name (e.g. T9): label from it instead of the anchors")
    p.add_argument("--models", type=Path, default=None, help="folder of retrained models: its "
                   "segmenter_unet.safetensors (instead of --weights)")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("train", help="retrain a model from a recipe in pipelines/")
    p.add_argument("what", choices=["grader", "segmenter", "synthesizer"], help="which model")
    p.add_argument("--config", required=True, type=Path, help="recipe, e.g. pipelines/grader.yaml")
    p.add_argument("--calibrate-only", action="store_true",
                   help="synthesizer: refit the height calibration of the recipe's output weights, no training")
    p.add_argument("--prepare-only", action="store_true",
                   help="synthesizer: build the recipe's phantom cohort caches (in parallel with --jobs), no training")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1) for a synthesizer's "
                   "--prepare-only and for a grader's phantom features")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("phantom", help="write synthetic spine CT studies in the VerSe layout")
    p.add_argument("--out", required=True, type=Path, help="output VerSe tree")
    p.add_argument("--n", type=int, default=1, help="number of studies (default 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed; study i uses seed + i")
    p.add_argument("--top", default="T8", help="most cranial vertebra (default T8)")
    p.add_argument("--bottom", default="L5", help="most caudal vertebra (default L5)")
    p.add_argument("--slice-mm", type=float, default=None, help="slice spacing (default: drawn)")
    p.add_argument("--in-plane-mm", type=float, default=None, help="in-plane spacing (default: drawn)")
    p.add_argument("--orientation", default=None, help="axis codes of written files, e.g. LPS")
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser("info", help="geometry, orientation, HU range and labels of an image")
    p.add_argument("image", type=Path, help="NIfTI file or DICOM series folder")
    p.add_argument("--series", default=None, help="DICOM series UID when a folder holds several")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("view", help="open the review viewer (Streamlit) on a results folder")
    p.add_argument("results", type=Path, help="folder of study result folders, or one study's folder")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    p.add_argument("--db", default=None, help="review database URL (default: sqlite RESULTS/reviews.sqlite)")
    p.add_argument("--reviewer", default=None, help="who reviews, stored with every review (default: the login user)")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("export", help="export grades with their reviews (CSV, JSON), maps and HTML reports")
    p.add_argument("results", type=Path, help="folder of study result folders, or one study's folder")
    p.add_argument("--out", type=Path, default=None, help="export folder (default RESULTS/export)")
    p.add_argument("--db", default=None, help="review database URL (default: sqlite RESULTS/reviews.sqlite)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="compare graded results with expert Genant grades (P/R/F1, kappa, "
                       "sensitivity/specificity with CIs)")
    p.add_argument("results", type=Path, help="a study result folder, a folder of them, a batch output folder, "
                   "or a per-vertebra CSV (study_id, label or name, genant_grade)")
    p.add_argument("--grades", type=Path, default=None, help="truth CSV: subject or study_id, vertebra_label or "
                   "vertebra, genant_grade or grade (default: the shipped VerSe 2019 grades, data_manifests/"
                   "verse2019.csv)")
    p.add_argument("--split", choices=["train", "val", "test"], default=None,
                   help="score only the truth rows of this split (needs a split column)")
    p.add_argument("--out", type=Path, default=None, help="where metrics.json, per_vertebra.csv and confusion.csv "
                   "go (default: RESULTS, or the CSV's folder)")
    p.add_argument("--json", action="store_true", help="print metrics.json instead of the text report")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"healthivert: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except ValueError as exc:  # argument values the library rejected
        print(f"healthivert: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("healthivert: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
