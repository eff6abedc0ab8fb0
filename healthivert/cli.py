"""The ``healthivert`` command line: thin entry points over the library.

Bad input ends with one line on stderr and exit code 2; library code never exits or prints.
"""

from __future__ import annotations

import argparse
import json
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
    from healthivert.phantom import FractureSpec, PhantomConfig, make_phantom, write_phantom
    from healthivert.phantom.study import summarise

    cfg = PhantomConfig(
        top="T10", bottom="L4",
        fractures=(FractureSpec("T12", 2, "wedge"), FractureSpec("L1", 3, "crush"),
                   FractureSpec("L3", 1, "biconcave")),
        slice_mm=1.5, deformity_rate=0.0,
    )
    study = make_phantom(cfg, args.seed, subject="sub-demo")
    paths = write_phantom(study, Path(args.out) / "phantom")
    print(f"synthetic study {study.subject}: {' x '.join(map(str, study.ct.shape))} voxels at "
          f"{' x '.join(f'{s:g}' for s in study.ct.spacing_mm)} mm")
    for name, p in paths.items():
        print(f"  {name:<10} {p}")
    print()
    print(_table(summarise(study.truth), ("vertebra", "grade", "morphology", "anterior mm",
                                          "middle mm", "posterior mm")))
    print("\nheights: fractured / healthy, mean of each third of the body along the spine axis")
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
    p.set_defaults(func=cmd_demo)

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


if __name__ == "__main__":
    sys.exit(main())
