#!/bin/bash
# Copy a study's runs (metrics.json, samples.png, and the training curves as curves.json; not
# checkpoints or event files) and its report, if it has one, from outputs/studies/<study> into
# experiments/<dest> (default: experiments/<study>):  bash experiments/collect.sh <study> [dest]
set -e
study=$1; src=outputs/studies/$study; dst=experiments/${2:-$study}
mkdir -p $dst
if [ -f $src/report.md ]; then
  mkdir -p $dst/report_files
  cp $src/report.md $src/report.html $dst/
  [ -f $src/report.json ] && cp $src/report.json $dst/
  cp $src/report_files/*.png $dst/report_files/
fi
for run in $src/*/; do
  name=$(basename "$run"); [ "$name" = report_files ] && continue
  [ -f "$run/metrics.json" ] || continue
  mkdir -p "$dst/$name"; cp "$run/metrics.json" "$dst/$name/"
  [ -f "$run/samples.png" ] && cp "$run/samples.png" "$dst/$name/"
  python -c "import sys; from pathlib import Path; from gan_lightning.report.runs import export_curves; export_curves(Path(sys.argv[1]))" "$run"
  [ -f "$run/curves.json" ] && mv "$run/curves.json" "$dst/$name/"
done
cp $src/multirun.yaml $dst/
du -sh $dst
