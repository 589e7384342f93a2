#!/bin/bash
# Copy a study's report and its runs' metrics.json / samples.png (not checkpoints or event files)
# from outputs/studies/<study> into experiments/<study>/:  bash experiments/collect.sh <study>
set -e
study=$1; src=outputs/studies/$study; dst=experiments/$study
mkdir -p $dst/report_files
cp $src/report.md $src/report.html $dst/
cp $src/report_files/*.png $dst/report_files/
for run in $src/*/; do
  name=$(basename "$run"); [ "$name" = report_files ] && continue
  [ -f "$run/metrics.json" ] || continue
  mkdir -p "$dst/$name"; cp "$run/metrics.json" "$dst/$name/"
  [ -f "$run/samples.png" ] && cp "$run/samples.png" "$dst/$name/"
done
cp $src/multirun.yaml $dst/
du -sh $dst
