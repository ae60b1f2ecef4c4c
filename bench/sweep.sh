#!/usr/bin/env bash
# Benchmark: `runproof sweep` (with its full sealed evidence bundle) against
# `curl --parallel --parallel-max 64` (bodies to tmpfs, then grep), both
# sweeping N distinct URLs on a private loopback nginx, run alternately.
#
#   bench/sweep.sh                       # N = 1,000 10,000 100,000, 5 runs each
#   BENCH_N="1000 10000" BENCH_RUNS=3 bench/sweep.sh
#
# Knobs (environment): BENCH_N, BENCH_RUNS (5), BENCH_CONCURRENCY (64),
# BENCH_PORT (18080), BENCH_NGINX_WORKERS (1), BENCH_WRK (1: measure the
# target's ceiling with wrk first), BENCH_TOOLS ("runproof curl"; "curl"
# alone measures only the peer), BENCH_KEEP (0: 1 keeps the temp folder).
# See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_N=${BENCH_N:-"1000 10000 100000"}
BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-64}
BENCH_PORT=${BENCH_PORT:-18080}
BENCH_NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}
BENCH_WRK=${BENCH_WRK:-1}
BENCH_TOOLS=${BENCH_TOOLS:-"runproof curl"}
BENCH_KEEP=${BENCH_KEEP:-0}
# The issue's hurl figure (8.0.1, --test --jobs 64, N = 10,000): printed as a
# reference only, hurl is not installed or run here.
HURL_REFERENCE_CPS=10000

say() { printf '%s\n' "$*" >&2; }
die() {
    say "bench: FAIL: $*"
    exit 1
}
wants() { [[ " $BENCH_TOOLS " == *" $1 "* ]]; }

# --- 1. what the benchmark needs, from Debian's packages --------------------
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}
apt_updated=0
apt_install() {
    if [[ $apt_updated -eq 0 ]]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
nginx_bin() { command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true; }

if [[ -z $(nginx_bin) ]]; then
    say "bench: installing nginx-light"
    apt_install nginx-light || apt_install nginx
fi
command -v curl >/dev/null || apt_install curl
[[ -x /usr/bin/time ]] || apt_install time
if [[ $BENCH_WRK == 1 ]] && ! command -v wrk >/dev/null; then
    apt_install wrk || say "bench: wrk unavailable, the target's ceiling is not measured"
fi
command -v cargo >/dev/null || die "cargo is needed to build runproof"
NGINX=$(nginx_bin)
[[ -n $NGINX ]] || die "nginx did not install"
curl --help all 2>/dev/null | grep -q -- '--parallel-max' || die "this curl has no --parallel (needs 7.66+)"

# --- scratch space on tmpfs; everything is removed on exit ------------------
if [[ -d /dev/shm && -w /dev/shm ]]; then SCRATCH_PARENT=/dev/shm; else SCRATCH_PARENT=${TMPDIR:-/tmp}; fi
WORK=$(mktemp -d "$SCRATCH_PARENT/runproof-bench.XXXXXX")
NGINX_PID=""
cleanup() {
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ $BENCH_KEEP == 1 ]]; then say "bench: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 2. a private nginx on 127.0.0.1 ----------------------------------------
NGX="$WORK/nginx"
mkdir -p "$NGX"
sed -e "s|@DIR@|$NGX|g" -e "s|@PORT@|$BENCH_PORT|g" -e "s|@WORKERS@|$BENCH_NGINX_WORKERS|g" \
    "$ROOT/bench/nginx.conf.template" >"$NGX/nginx.conf"
if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$BENCH_PORT/"; then
    die "something already listens on 127.0.0.1:$BENCH_PORT (set BENCH_PORT)"
fi
"$NGINX" -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$BENCH_PORT/" && break
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx did not start: $(cat "$NGX/error.log" 2>/dev/null)"
    sleep 0.05
done
[[ $(curl -s "http://127.0.0.1:$BENCH_PORT/u/1") == ok ]] || die "nginx does not answer ok"

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
say "bench: machine: $(nproc) CPUs, ${CPU_MODEL:-unknown model}; $("$NGINX" -v 2>&1) with $BENCH_NGINX_WORKERS worker(s) on 127.0.0.1:$BENCH_PORT"
say "bench: $(curl --version | head -1 | cut -d' ' -f1-2); scratch in $WORK"

WRK_RPS=""
if [[ $BENCH_WRK == 1 ]] && command -v wrk >/dev/null; then
    # Raw keep-alive ceiling of the target: no assertions, no results.
    WRK_RPS=$(wrk -t 1 -c "$BENCH_CONCURRENCY" -d 3s "http://127.0.0.1:$BENCH_PORT/u/1" |
        awk '/^Requests\/sec:/ {printf "%d", $2}')
    say "bench: target ceiling (wrk -t1 -c$BENCH_CONCURRENCY, 3 s keep-alive): $WRK_RPS req/s"
fi

# --- 3. build runproof --------------------------------------------------------
RUNPROOF="$ROOT/target/release/runproof"
if wants runproof; then
    say "bench: cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    "$RUNPROOF" sweep --help >/dev/null 2>&1 ||
        die "this runproof has no 'sweep' command (BENCH_TOOLS=curl measures only the peer)"
fi

# Writes N checks as TOML files of 1,000 checks each into $1/checks, and the
# matching curl config (url/output pairs, so argv stays small) into $1/curl.cfg.
generate() {
    local dir=$1 n=$2
    mkdir -p "$dir/checks" "$dir/bodies"
    awk -v n="$n" -v port="$BENCH_PORT" -v dir="$dir" 'BEGIN {
        per = 1000
        for (i = 1; i <= n; i++) {
            if ((i - 1) % per == 0) {
                if (f) close(f)
                f = sprintf("%s/checks/part-%05d.toml", dir, int((i - 1) / per))
                print "[defaults]\nretries = 0\ntimeout = \"10s\"\n" > f
            }
            printf "[[check]]\nid = \"c%07d\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:%d/u/%d\"\nexpect = { status = 200, body_contains = \"ok\" }\n\n", i, port, i > f
            printf "url = \"http://127.0.0.1:%d/u/%d\"\noutput = \"%s/bodies/%d\"\n", port, i, dir, i > (dir "/curl.cfg")
        }
        close(f)
    }'
}

now_ns() { date +%s%N; }

# Runs one measured command; sets WALL (seconds) and RSS (KB, peak of the
# command and everything it waited for, from GNU time) and returns its status.
measure() {
    local rss_file="$WORK/rss" t0 t1 status=0
    t0=$(now_ns)
    /usr/bin/time -f '%M' -o "$rss_file" "$@" || status=$?
    t1=$(now_ns)
    WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b - a) / 1e9}')
    RSS=$(tail -1 "$rss_file")
    return "$status"
}

# The peer: fetch every URL, body to a tmpfs file, status checked by --fail,
# then count the bodies containing "ok". Timed as one unit.
curl_sweep() {
    local dir=$1
    curl --parallel --parallel-max "$BENCH_CONCURRENCY" --fail --silent --show-error \
        -K "$dir/curl.cfg" &&
        grep -rlF ok "$dir/bodies" | wc -l >"$dir/count"
}
export -f curl_sweep
export BENCH_CONCURRENCY

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

VERIFY_N=""
for n in $BENCH_N; do [[ $n == 10000 ]] && VERIFY_N=$n; done
[[ -n $VERIFY_N ]] || VERIFY_N=${BENCH_N##* }
VERIFY_TEXT="" VERIFY_STATUS="" BUNDLE_RECORDS="" BUNDLE_BYTES="" BUNDLE_FILES=""

RESULTS="$WORK/results"
: >"$RESULTS"
for n in $BENCH_N; do
    dir="$WORK/n$n"
    art="$WORK/artifacts-$n"
    generate "$dir" "$n"
    say "bench: N=$n: $(find "$dir/checks" -name '*.toml' | wc -l) check files, $BENCH_RUNS runs of each tool, alternating"
    : >"$dir/rp.wall" && : >"$dir/rp.rss" && : >"$dir/curl.wall" && : >"$dir/curl.rss"
    for run in $(seq "$BENCH_RUNS"); do
        if wants runproof; then
            rm -rf "$art"
            measure "$RUNPROOF" sweep "$dir/checks" --concurrency "$BENCH_CONCURRENCY" \
                --artifacts "$art" >/dev/null 2>"$dir/rp.err" ||
                die "runproof sweep exited $? at N=$n run $run: $(tail -5 "$dir/rp.err")"
            echo "$WALL" >>"$dir/rp.wall" && echo "$RSS" >>"$dir/rp.rss"
            say "  run $run runproof: ${WALL}s ${RSS}KB"
        fi
        if wants curl; then
            rm -rf "$dir/bodies" "$dir/count" && mkdir -p "$dir/bodies"
            measure bash -c 'curl_sweep "$1"' _ "$dir" 2>"$dir/curl.err" ||
                die "curl sweep failed at N=$n run $run: $(tail -5 "$dir/curl.err")"
            count=$(cat "$dir/count")
            [[ $count -eq $n ]] || die "curl: $count of $n bodies contain ok at N=$n run $run"
            echo "$WALL" >>"$dir/curl.wall" && echo "$RSS" >>"$dir/curl.rss"
            say "  run $run curl:     ${WALL}s ${RSS}KB ($count/$n ok)"
        fi
    done
    rp_wall=- rp_rss=- curl_wall=- curl_rss=-
    wants runproof && rp_wall=$(median <"$dir/rp.wall") && rp_rss=$(median <"$dir/rp.rss")
    wants curl && curl_wall=$(median <"$dir/curl.wall") && curl_rss=$(median <"$dir/curl.rss")
    echo "$n $rp_wall $rp_rss $curl_wall $curl_rss" >>"$RESULTS"

    if wants runproof && [[ $n == "$VERIFY_N" ]]; then
        seal=$(find "$art" -name seal.json -print -quit)
        [[ -n $seal ]] || die "no seal.json under the N=$n artifacts"
        bundle=$(dirname "$seal")
        BUNDLE_RECORDS=$(wc -l <"$bundle/events.jsonl" 2>/dev/null || echo "?")
        BUNDLE_BYTES=$(du -sb "$bundle" | cut -f1)
        BUNDLE_FILES=$(find "$bundle" -type f | wc -l)
        VERIFY_STATUS=0
        VERIFY_TEXT=$("$RUNPROOF" verify "$bundle" 2>&1) || VERIFY_STATUS=$?
    fi
    [[ $BENCH_KEEP == 1 ]] || rm -rf "$art" "$dir"
done

# --- 5. the comparison ------------------------------------------------------
echo
echo "runproof sweep vs curl --parallel: N distinct URLs on loopback nginx, concurrency $BENCH_CONCURRENCY, median of $BENCH_RUNS"
echo "machine: $(nproc) CPUs, ${CPU_MODEL:-unknown}; target: $("$NGINX" -v 2>&1 | sed 's/.*: //'), $BENCH_NGINX_WORKERS worker(s)${WRK_RPS:+, wrk ceiling $WRK_RPS req/s}"
echo
awk -v hurl="$HURL_REFERENCE_CPS" '
function cps(n, w) { return (w == "-" || w <= 0) ? "-" : sprintf("%d", n / w) }
function mb(k) { return k == "-" ? "-" : sprintf("%.1f", k / 1024) }
BEGIN {
    fmt = "%9s | %9s %9s %8s | %9s %9s %8s | %6s | %9s\n"
    printf fmt, "N", "runproof", "checks/s", "RSS MB", "curl", "checks/s", "RSS MB", "ratio", "vs hurl"
    printf fmt, "", "wall s", "", "", "wall s", "", "", "c/r", "(10k/s)"
}
{
    ratio = ($2 == "-" || $4 == "-") ? "-" : sprintf("%.2f", $4 / $2)
    vh = ($2 == "-") ? "-" : sprintf("%.1fx", ($1 / $2) / hurl)
    printf fmt, $1, $2, cps($1, $2), mb($3), $4, cps($1, $4), mb($5), ratio, vh
}' "$RESULTS"
echo
echo "ratio = curl wall / runproof wall (> 1: runproof is faster). hurl 8.0.1 --test --jobs 64: $HURL_REFERENCE_CPS checks/s at N = 10,000 (reference from the issue, not measured here)."
if wants runproof; then
    echo
    echo "runproof scaling (wall per check; flat = linear):"
    awk '$2 != "-" {printf "  N = %7d: %8.2f us/check\n", $1, $2 / $1 * 1e6}' "$RESULTS"
    echo
    echo "runproof verify on the N = $VERIFY_N bundle: exit $VERIFY_STATUS; $BUNDLE_RECORDS records, $BUNDLE_FILES files, $BUNDLE_BYTES bytes"
    printf '%s\n' "$VERIFY_TEXT" | head -20 | sed 's/^/  /'
    [[ $VERIFY_STATUS == 0 ]] || die "runproof verify did not accept the bundle"
fi
