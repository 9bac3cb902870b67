#!/usr/bin/env bash
# Set up (scripts/setup.sh), score an adapter and write its report.
#   bash scripts/conformance.sh [ADAPTER] [PROFILE]     (defaults: keras smoke)
# Writes conformance-report/report.json, report.html, report.md and report.xml (JUnit).
# Installs only what scoring that adapter needs: the harness and the adapter's extra of
# pyproject.toml (none for reference or an adapter of your own, named module:attr; install its
# framework yourself), not the test tools.
set -uo pipefail
cd "$(dirname "$0")/.."
adapter=${1:-keras}
profile=${2:-smoke}
case "$adapter" in
  keras) extra=tensorflow ;;
  tf-keras|torch|jax|keras-jax|keras-torch|keras-numpy|onnxruntime|openvino|litert) extra=$adapter ;;
  onnxruntime-noopt) extra=onnxruntime ;;
  litert-noxnnpack) extra=litert ;;
  *) extra= ;;
esac
bash scripts/setup.sh "harness${extra:+,$extra}" || exit 1
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
.venv/bin/conv-conformance run --adapter "$adapter" --profile "$profile" --jobs 2 --out conformance-report
status=$?
if [ -f conformance-report/report.json ]; then
  for fmt in html markdown junit; do
    ext=$fmt; [ "$fmt" = markdown ] && ext=md; [ "$fmt" = junit ] && ext=xml
    .venv/bin/conv-conformance report conformance-report/report.json --format "$fmt" --out "conformance-report/report.$ext"
  done
  echo "report: conformance-report/report.html (and report.json, report.md, report.xml)"
fi
exit "$status"
