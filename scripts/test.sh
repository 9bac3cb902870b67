#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite on 2 workers, then run every test that
# runs TensorFlow or PyTorch kernels (markers `kernels`, `tensorflow`, `tf_keras`, `torch`) again
# with TensorFlow's oneDNN switched the other way, and, on an AVX-512 CPU, with oneDNN capped at
# AVX2 (what an AVX2-only CPU runs).
# Extra arguments go to every pytest pass. Under CI (CI set), Hypothesis runs the derandomized
# "ci" profile. Exit status: the first failing pass's; pytest's 5 (no tests collected) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# Headless Chromium for the HTML report's browser test (Debian packages; root on CI).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped"
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}

run_pass() {  # run_pass LABEL [VAR=VALUE ...] -- PYTEST-ARGS...
  local label=$1; shift
  local vars=()
  while [ "$1" != "--" ]; do vars+=("$1"); shift; done
  shift
  echo "== pytest pass: $label"
  env "${vars[@]}" .venv/bin/python -m pytest -n 2 "$@"
  local status=$?
  if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests in pass '$label'" >&2
    return 1
  fi
  return "$status"
}

run_pass "everything" -- "$@" || exit $?

# The state this machine runs by default, as TensorFlow and the CPU report it.
read -r onednn isa < <(.venv/bin/python -c "
from conv_conformance.conformance import environment
import tensorflow
print(int(bool(environment.tensorflow_onednn())), environment.onednn_isa())" 2>/dev/null | tail -1)
flip=$([ "${onednn:-1}" = 1 ] && echo 0 || echo 1)
# Every test whose outcome can depend on which CPU kernels run.
kernels="kernels or tensorflow or tf_keras or torch"
run_pass "kernels, TF_ENABLE_ONEDNN_OPTS=$flip" TF_ENABLE_ONEDNN_OPTS=$flip -- -m "$kernels" "$@" || exit $?
if [ "${isa:-}" = avx512 ]; then
  run_pass "kernels, oneDNN on, ONEDNN_MAX_CPU_ISA=AVX2" TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX2 \
    -- -m "$kernels" "$@" || exit $?
fi
exit 0
