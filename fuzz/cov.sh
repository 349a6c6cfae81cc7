#!/bin/sh
# fuzz/cov.sh - line coverage of vhu.c and of the console device
# (console.c) reached by the fuzz corpora.  Each target is built again with clang's source-based
# coverage and replays its seeds and corpus once (-runs=0); llvm-cov says
# which lines ran.  Both targets together is the union of their lines.
# Run `make fuzz-run` first; builds and profiles go to fuzz/work/.
set -u
cd "$(dirname "$0")/.." || exit 1

W=fuzz/work
PROFDATA=${LLVM_PROFDATA:-llvm-profdata-14}
COV=${LLVM_COV:-llvm-cov-14}

# The fuzz build's flags, but source-based coverage instead of sanitizers.
cc_cov() {
	clang -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=fuzzer \
		-fprofile-instr-generate -fcoverage-mapping \
		-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DVERSION='"cov"' "$@"
}

# replay TARGET: build it with coverage, replay its inputs; then, for each
# file, W/lines_TARGET_FILE: "LINE HIT FUNCTION" per executable line.
replay() {
	[ -d "$W/seeds_$1" ] || { echo "cov.sh: no $W/seeds_$1: run make fuzz-run first" >&2; exit 1; }
	mkdir -p "$W/corpus_$1"
	cc_cov -o "$W/cov_$1" "fuzz/fuzz_$1.c" || exit 1
	rm -f "$W/cov_$1.profraw"
	LLVM_PROFILE_FILE="$W/cov_$1.profraw" "./$W/cov_$1" -runs=0 -max_len=65536 \
		"$W/corpus_$1" "$W/seeds_$1" >"$W/cov_$1.log" 2>&1 ||
		{ echo "cov.sh: replaying $1 failed:" >&2; tail -n 20 "$W/cov_$1.log" >&2; exit 1; }
	"$PROFDATA" merge -sparse "$W/cov_$1.profraw" -o "$W/cov_$1.profdata" || exit 1
	for f in vhu.c console.c; do
		"$COV" show -instr-profile="$W/cov_$1.profdata" "$W/cov_$1" "$f" |
			awk -F'|' '
				$3 ~ /^[a-z_0-9]+\(/ { fn = $3; sub(/\(.*/, "", fn) }
				$2 ~ /[0-9]/ { print $1 + 0, ($2 + 0 != 0 || $2 ~ /[kMG]/), fn }' \
			>"$W/lines_$1_$f"
	done
}

# count FROM MAP...: "hit/all (pct)" over the executable lines numbered
# FROM or more, a line hit if any map has it hit.
count() {
	from=$1
	shift
	awk -v from="$from" '$1 >= from { n[$1] = 1; if ($2) hit[$1] = 1 }
		END { a = length(n); h = length(hit)
		      printf "%d/%d (%.1f%%)", h, a, a ? 100 * h / a : 0 }' "$@"
}

row() {
	name=$1
	shift
	vhu='' dev=''
	for t in "$@"; do
		vhu="$vhu $W/lines_${t}_vhu.c"
		dev="$dev $W/lines_${t}_console.c"
	done
	# shellcheck disable=SC2086
	printf '%-10s  vhu.c %-22s  console device %s\n' "$name" \
		"$(count 0 $vhu)" "$(count 0 $dev)"
}

replay vhu
replay ring

echo "line coverage of the corpora in $W (executable lines hit/all):"
row fuzz_vhu vhu
row fuzz_ring ring
row both vhu ring

echo
echo "console device, per function (both targets):"
awk '{
		key = $3 " " $1
		if (!(key in seen)) { seen[key] = 1; n[$3]++; order[++k] = $3 }
		if ($2 && !(key in hit)) { hit[key] = 1; h[$3]++ } }
	END { for (i = 1; i <= k; i++) if (!(order[i] in done)) {
		f = order[i]; done[f] = 1
		printf "  %-22s %3d/%-3d\n", f, h[f], n[f] } }' \
	"$W/lines_vhu_console.c" "$W/lines_ring_console.c"
