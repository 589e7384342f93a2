"""``gan-report <sweep dir>`` / ``python -m gan_lightning.report <sweep dir>``."""

from __future__ import annotations

import argparse
import sys

from gan_lightning.report.build import build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gan-report",
        description="Turn a sweep folder (python train.py -m ...) into report.md and a "
                    "self-contained report.html inside it.")
    parser.add_argument("sweep_dir", help="the multirun folder, e.g. outputs/multirun/DATE/TIME")
    args = parser.parse_args(argv)
    try:
        out = build_report(args.sweep_dir)
    except FileNotFoundError as error:
        print(f"gan-report: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out['markdown']} and {out['html']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
