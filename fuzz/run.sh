#!/bin/bash
# A short fuzz run of every target on the STABLE toolchain (no nightly, no
# cargo-fuzz):
#
#   fuzz/run.sh [SECONDS] [TARGET...]     SECONDS per target (default 20);
#                                         targets: label mda scan text (default all)
#
# How: rustc's stable `-C passes=sancov-module` and `-C llvm-args` add the
# SanitizerCoverage instrumentation libFuzzer feeds on (8-bit edge counters,
# PC table, compare tracing), exactly what cargo-fuzz passes on nightly less
# AddressSanitizer (-Z only; the code under test is safe Rust, so every bug
# shows as a panic). `--cfg fuzzing` is set as cargo-fuzz sets it.
# libfuzzer-sys builds its bundled libFuzzer (C++) with the system compiler
# (g++; `vm-tests/lab.sh setup` installs it). The targets are built in release
# mode with debug assertions and overflow checks on, in fuzz/target.
#
# Each target runs for SECONDS from its committed seeds (fuzz/seeds/TARGET)
# plus whatever fuzz/corpus/TARGET already holds (new inputs go there). A crash
# leaves its input in fuzz/artifacts/TARGET/ and the whole log beside it;
# the script goes on with the other targets and exits 1 if any crashed.
# Nothing outside fuzz/ is written (but cargo's own registry cache).
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-20}
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: fuzz/run.sh [SECONDS] [TARGET...]  (SECONDS a positive integer)" >&2
    exit 2
fi
shift || true
all=(label mda scan text)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${all[@]}")

# -max_len per target: a label lives in the first 4 sectors (4 KiB read);
# an mda area is cut at 1 MiB (lvm2's default area is just under that); a
# device image for scan at 64 KiB (the label's 4 KiB and a small area: its
# seeds are lvm2's PVs with the area shrunk); the metadata text at 64 KiB
# (ample for hundreds of LVs).
declare -A max_len=([label]=4096 [mda]=1048576 [scan]=65536 [text]=65536)
for t in "${targets[@]}"; do
    if [ -z "${max_len[$t]:-}" ]; then
        echo "fuzz: unknown target $t (known: ${all[*]})" >&2
        exit 2
    fi
done

if [ -z "${CXX:-}" ] && ! command -v c++ >/dev/null; then
    if command -v g++ >/dev/null; then export CXX=g++; fi
fi
if ! command -v "${CXX:-c++}" >/dev/null; then
    echo "fuzz: no C++ compiler to build libFuzzer with: apt-get install g++ (or vm-tests/lab.sh setup)" >&2
    exit 2
fi
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    . "$HOME/.cargo/env"
fi

triple=$(rustc -vV | sed -n 's/^host: //p')
# Naming the target keeps the instrumentation (RUSTFLAGS) off build scripts
# and proc-macros. RUSTFLAGS replaces the root .cargo/config.toml's
# crt-static flag, which a C++ libFuzzer should not be linked with.
unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing"
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
export CARGO_TERM_PROGRESS_WHEN=never

echo "fuzz: building ${targets[*]} (release, debug assertions, sancov; fuzz/target/$triple/release)"
bin_args=()
for t in "${targets[@]}"; do bin_args+=(--bin "$t"); done
timeout -k 10 "${FUZZ_BUILD_TIMEOUT:-1800}" \
    cargo build --release --target "$triple" --target-dir target "${bin_args[@]}"

failed=0
for t in "${targets[@]}"; do
    bin="target/$triple/release/$t"
    corpus="corpus/$t"
    artifacts="artifacts/$t"
    log="$artifacts/last-run.log"
    mkdir -p "$corpus" "$artifacts"
    dict=()
    [ -f "dicts/$t.dict" ] && dict=(-dict="dicts/$t.dict")
    start=$(date +%s.%N)
    rc=0
    # libFuzzer stops itself after SECONDS; timeout is the backstop. A single
    # input running over 10 s counts as a crash (a hang), as does 2 GiB RSS.
    timeout -k 10 $((secs + 120)) env RUST_BACKTRACE=1 "$bin" \
        -max_total_time="$secs" -max_len="${max_len[$t]}" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "${dict[@]}" "$corpus" "seeds/$t" </dev/null >"$log" 2>&1 || rc=$?
    took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=0
    if [ "$rc" = 0 ]; then
        echo "fuzz $t: $runs runs in $took s, 0 crashes"
        continue
    fi
    failed=1
    input=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | tail -n 1)
    if [ -n "$input" ]; then
        saved="$input.log"
        cp "$log" "$saved"
        echo "fuzz $t: $runs runs in $took s, 1 crash: fuzz/$input (exit $rc)"
        # The panic (message and backtrace) up to libFuzzer's own report.
        awk '/panicked at/ { on = 1 } /^==[0-9]+== ?ERROR: libFuzzer/ { on = 0 } on' "$saved" |
            head -n 80 | cut -c 1-600 | sed "s/^/  | /"
        grep -m 1 -E '^==[0-9]+== ?ERROR: libFuzzer' "$saved" | sed 's/^/  | /' || true
        echo "  full log: fuzz/$saved"
        echo "  reproduce: fuzz/$bin fuzz/$input"
    else
        echo "fuzz $t: $runs runs in $took s, failed with exit $rc and no crash input; last lines of fuzz/$log:"
        tail -n 30 "$log" | sed 's/^/  | /'
    fi
done
exit "$failed"
