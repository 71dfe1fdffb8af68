#!/usr/bin/env bash
# Memory checks: the conformance suite and the model-based tests under
# valgrind memcheck, then under AddressSanitizer (nightly toolchain).
#
#   scripts/memcheck.sh            # both
#   scripts/memcheck.sh valgrind   # valgrind only
#   scripts/memcheck.sh asan       # AddressSanitizer only
#
# Tests run: tests/conformance.rs (skipped with a note while it does not
# exist) and tests/model.rs; under ASan also tests/faults.rs, which costs
# little there. Any memcheck error, definite leak or sanitizer report fails
# the run (exit 1). A missing tool (valgrind, the nightly toolchain) is
# reported and exits 2 unless MEMCHECK_SKIP_MISSING=1, which skips it.
#
# Environment:
#   PROPTEST_CASES_VALGRIND  proptest cases per property under valgrind (default 100)
#   PROPTEST_CASES_ASAN      proptest cases per property under ASan (default 300)
#   MEMCHECK_TARGET_DIR      cargo target dir (default target-memcheck)
#   MODEL_SKIP               a test-name filter to skip in tests/model.rs
#                            (default: none)
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
case "$what" in all | valgrind | asan) ;; *)
    echo "usage: $0 [all|valgrind|asan]" >&2
    exit 2
    ;;
esac

target_dir="${MEMCHECK_TARGET_DIR:-$PWD/target-memcheck}"
model_skip="${MODEL_SKIP:-}"
tests=(model)
if [[ -f tests/conformance.rs ]]; then
    tests=(conformance model)
else
    echo "memcheck: tests/conformance.rs does not exist yet; skipping it"
fi
status=0

missing() {
    echo "memcheck: $1 is not available" >&2
    if [[ "${MEMCHECK_SKIP_MISSING:-0}" == 1 ]]; then
        echo "memcheck: skipping (MEMCHECK_SKIP_MISSING=1)" >&2
        return 0
    fi
    exit 2
}

# Arguments for one test binary: MODEL_SKIP, for tests/model.rs.
harness_args() {
    local t="$1"
    if [[ "$t" == model && -n "$model_skip" ]]; then
        echo "--skip $model_skip"
    fi
}

run_valgrind() {
    command -v valgrind >/dev/null || { missing valgrind; return; }
    local cases="${PROPTEST_CASES_VALGRIND:-100}"
    local args=()
    for t in "${tests[@]}"; do args+=(--test "$t"); done
    echo "memcheck: building ${tests[*]} (debug) for valgrind"
    local exes
    exes=$(CARGO_TARGET_DIR="$target_dir/valgrind" cargo test --no-run --message-format=json "${args[@]}" |
        grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//')
    for t in "${tests[@]}"; do
        local exe
        exe=$(echo "$exes" | grep "/$t-" | head -n1)
        [[ -n "$exe" ]] || { echo "memcheck: no binary for $t" >&2; status=1; continue; }
        echo "memcheck: valgrind $t (PROPTEST_CASES=$cases)"
        local start=$SECONDS
        # shellcheck disable=SC2046 # the harness arguments are words
        if PROPTEST_CASES="$cases" valgrind --quiet --error-exitcode=1 --leak-check=full \
            --errors-for-leak-kinds=definite --show-leak-kinds=definite \
            --track-fds=no "$exe" --test-threads=2 $(harness_args "$t"); then
            echo "memcheck: valgrind $t passed in $((SECONDS - start)) s"
        else
            echo "memcheck: valgrind $t FAILED after $((SECONDS - start)) s" >&2
            status=1
        fi
    done
}

run_asan() {
    rustup run nightly rustc --version >/dev/null 2>&1 || { missing "the nightly toolchain"; return; }
    local cases="${PROPTEST_CASES_ASAN:-300}"
    local host=x86_64-unknown-linux-gnu
    local asan_tests=("${tests[@]}" faults)
    local start=$SECONDS
    for t in "${asan_tests[@]}"; do
        echo "memcheck: AddressSanitizer $t (PROPTEST_CASES=$cases)"
        local t0=$SECONDS
        # --target keeps build scripts and proc macros out of the sanitizer.
        # shellcheck disable=SC2046
        if RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
            ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=1" \
            PROPTEST_CASES="$cases" CARGO_TARGET_DIR="$target_dir/asan" \
            cargo +nightly test --target "$host" --test "$t" -- $(harness_args "$t"); then
            echo "memcheck: AddressSanitizer $t passed in $((SECONDS - t0)) s (build included)"
        else
            echo "memcheck: AddressSanitizer $t FAILED" >&2
            status=1
        fi
    done
    echo "memcheck: AddressSanitizer total $((SECONDS - start)) s"
}

case "$what" in
all)
    run_valgrind
    run_asan
    ;;
valgrind) run_valgrind ;;
asan) run_asan ;;
esac

if [[ $status -eq 0 ]]; then
    echo "memcheck: clean"
else
    echo "memcheck: FAILED" >&2
fi
exit $status
