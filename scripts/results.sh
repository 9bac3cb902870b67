#!/usr/bin/env bash
# Regenerate the published results with the shipped adapters:
#   docs/samples/   smoke profile, float32: every report format, a scoreboard and a comparison
#   docs/results/   standard profile, float32 and float64: report.json per adapter and the scoreboards,
#                   and keras, tf-keras and torch once more on the kernels an AVX2-only CPU runs
#                   (TF_ENABLE_ONEDNN_OPTS=0, ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2:
#                   what TensorFlow and PyTorch pick by themselves on an AMD EPYC without AVX-512),
#                   directories <adapter>-<dtype>-avx2. Every report.json records its environment.
#   docs/results/runtimes/   the deployment-runtime adapters at the standard profile (float32; float64
#                   where the runtime computes it)
#   docs/results/networks/   the networks profile: every shipped adapter at float32, the training
#                   frameworks' adapters at float16 and bfloat16 too (the reference at float16)
#   docs/results/README.md   the results page, generated from every report.json under docs/results
#                   (scripts/results_table.py readme) after any of the above; `readme` regenerates
#                   only the page
# Usage: bash scripts/results.sh [samples|results|runtimes|networks|readme|all]
#   (default all; on 2 cores: results ~2.5 h with jax, runtimes ~1 h, networks ~1.5 h)
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
case "$what" in
  samples|results|runtimes|networks|readme|all) ;;
  *) echo "usage: bash scripts/results.sh [samples|results|runtimes|networks|readme|all]; got '$what'" >&2; exit 2 ;;
esac
# readme: no run, only the scoreboards and the page from the reports already there
[ "$what" = readme ] || bash scripts/setup.sh || exit 1
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
cc=.venv/bin/conv-conformance
adapters="reference keras tf-keras torch jax"

if [ "$what" = samples ] || [ "$what" = all ]; then
  for a in $adapters; do
    rm -rf "docs/samples/$a"
    $cc run --adapter "$a" --profile smoke --jobs 2 --out "docs/samples/$a" >/dev/null
    rm -f "docs/samples/$a/run.json"
    $cc report "docs/samples/$a/report.json" --format markdown --out "docs/samples/$a/report.md"
    $cc report "docs/samples/$a/report.json" --format html --out "docs/samples/$a/report.html"
    $cc report "docs/samples/$a/report.json" --format junit --out "docs/samples/$a/junit.xml"
  done
  $cc scoreboard docs/samples/{reference,keras,tf-keras,torch,jax}/report.json --out docs/samples
  $cc compare docs/samples/reference/report.json docs/samples/keras/report.json \
    --out docs/samples/compare-reference-vs-keras.md >/dev/null
fi

if [ "$what" = results ] || [ "$what" = all ]; then
  for dt in float32 float64; do
    for a in $adapters; do
      $cc run --adapter "$a" --profile standard --dtype "$dt" --jobs 2 --out "docs/results/$a-$dt" >/dev/null
      rm -f "docs/results/$a-$dt/report.partial.jsonl" "docs/results/$a-$dt/run.json"
    done
    for a in keras tf-keras torch; do
      TF_ENABLE_ONEDNN_OPTS=0 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \
        $cc run --adapter "$a" --profile standard --dtype "$dt" --jobs 2 --out "docs/results/$a-$dt-avx2" >/dev/null
      rm -f "docs/results/$a-$dt-avx2/report.partial.jsonl" "docs/results/$a-$dt-avx2/run.json"
    done
  done
fi
keep() {  # a finished run's directory, without what only --resume needs
  rm -f "$1/report.partial.jsonl" "$1/run.json"
}

if [ "$what" = runtimes ] || [ "$what" = all ]; then
  for a in keras-jax keras-torch keras-numpy onnxruntime onnxruntime-noopt openvino litert litert-noxnnpack; do
    for dt in float32 float64; do
      case "$a:$dt" in openvino:float64|litert*:float64|onnxruntime-noopt:float64) continue ;; esac
      $cc run --adapter "$a" --profile standard --dtype "$dt" --jobs 2 --out "docs/results/runtimes/$a-$dt" >/dev/null
      keep "docs/results/runtimes/$a-$dt"
    done
  done
fi

if [ "$what" = networks ] || [ "$what" = all ]; then
  for run in reference:float32 reference:float16 keras:float32 keras:float16 keras:bfloat16 tf-keras:float32 \
             tf-keras:float16 tf-keras:bfloat16 torch:float32 torch:float16 torch:bfloat16 jax:float32 jax:float16 \
             jax:bfloat16 onnxruntime:float32 onnxruntime-noopt:float32 openvino:float32 \
             keras-torch:float32 keras-numpy:float32 keras-jax:float32 litert:float32 litert-noxnnpack:float32; do
    a=${run%%:*} dt=${run##*:}
    $cc run --adapter "$a" --profile networks --dtype "$dt" --jobs 2 --timeout 300 \
      --out "docs/results/networks/$a-$dt" >/dev/null
    keep "docs/results/networks/$a-$dt"
  done
fi
# One scoreboard per dtype: every standard-profile report there is, frameworks and runtimes.
if [ "$what" = results ] || [ "$what" = runtimes ] || [ "$what" = all ] || [ "$what" = readme ]; then
  r=docs/results
  for dt in float32 float64; do
    runs=()
    for f in $r/{reference,keras,tf-keras,torch,jax}-$dt{,-avx2}/report.json $r/runtimes/*-$dt/report.json; do
      [ -f "$f" ] && runs+=("$f")
    done
    $cc scoreboard "${runs[@]}" --out "$r/scoreboard-$dt" >/dev/null || exit 1
  done
fi
.venv/bin/python scripts/results_table.py readme docs/results || exit 1
echo done
