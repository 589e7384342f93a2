"""``gan-report <sweep dir> [<sweep dir> ...]`` / ``python -m gan_lightning.report ...``."""

from __future__ import annotations

import argparse
import sys

from gan_lightning.report.build import build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gan-report",
        description="Turn sweep folders (python train.py -m ...) into report.md, a "
                    "self-contained report.html and report.json: per swept axis, each value's "
                    "figures with 95% confidence intervals and a verdict on whether it matters.")
    parser.add_argument("sweep_dirs", nargs="+", metavar="sweep_dir",
                        help="a multirun folder, e.g. outputs/multirun/DATE/TIME; several are "
                             "read as one study (more seeds or values added later)")
    parser.add_argument("--out", help="where the report goes (default: the first sweep folder)")
    args = parser.parse_args(argv)
    try:
        out = build_report(args.sweep_dirs, args.out)
    except FileNotFoundError as error:
        print(f"gan-report: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out['markdown']}, {out['html']} and {out['json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
