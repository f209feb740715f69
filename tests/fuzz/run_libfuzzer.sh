#!/bin/sh
# run_libfuzzer.sh FUZZER CORPUS SECONDS: run a libFuzzer binary for a
# bounded time over a scratch copy of the saved corpus (new inputs go to
# the scratch directory, never into the source tree). Any crash, leak or
# sanitizer report makes libFuzzer exit non-zero; the input that did it is
# kept as ./fuzz-artifacts/<target>-crash-* (the directory the test ran in,
# meson's build directory) so that it can be replayed and added to the
# corpus. -error_exitcode=1: libFuzzer's default, 77, is meson's "skipped",
# which turned a found bug into a skip.
set -eu
fuzzer=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
corpus=$2 seconds=${EVS_FUZZ_SECONDS:-$3}
artifacts=$(pwd)/fuzz-artifacts
mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/evs-fuzz-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=4096 \
	-print_final_stats=1 -error_exitcode=1 -artifact_prefix="$artifacts/$(basename "$1")-" "$scratch" "$corpus"
