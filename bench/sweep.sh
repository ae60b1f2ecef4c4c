#!/usr/bin/env bash
# Benchmark: `runproof sweep` (with its full sealed evidence bundle on the
# real disk, synced as in production) against `curl --parallel
# --parallel-max 64` (status by --fail, bodies counted by grep), both sweeping
# N distinct URLs on a private loopback nginx with a bearer token header per
# request, in two layouts (one check file; files of 1,000 checks), with
# runproof's default retry policy, run alternately.
#
#   bench/sweep.sh                       # N = 10,000 100,000, 3 runs each
#   BENCH_N="10000 100000 1000000" BENCH_RUNS=3 bench/sweep.sh
#
# Knobs (environment): BENCH_N, BENCH_RUNS (3), BENCH_LAYOUTS ("one many"),
# BENCH_CONCURRENCY (64), BENCH_PORT (18080), BENCH_NGINX_WORKERS (1),
# BENCH_WRK (1: measure the target's ceiling with wrk before each row), BENCH_TOOLS
# ("runproof curl"; "curl" alone measures only the peer), BENCH_RUNPROOF (a
# runproof binary to measure instead of building one), BENCH_BEFORE (a second
# runproof binary, e.g. an older build, run alternately with the others as
# "before"), BENCH_DISK (folder on the real disk for the bundles; default
# target/bench-artifacts), BENCH_KEEP (0: 1 keeps the temp folders),
# BENCH_CALLGRIND (0: 1 also counts each runproof build's instructions per
# check under valgrind's callgrind, once per N and layout: repeatable where
# wall times are not). Each run's CPU seconds (and nginx's meanwhile) and a
# CPU calibration per row are printed beside the wall times.
# See bench/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_N=${BENCH_N:-"10000 100000"}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_LAYOUTS=${BENCH_LAYOUTS:-"one many"}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-64}
BENCH_PORT=${BENCH_PORT:-18080}
BENCH_NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}
BENCH_WRK=${BENCH_WRK:-1}
BENCH_TOOLS=${BENCH_TOOLS:-"runproof curl"}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_RUNPROOF=${BENCH_RUNPROOF:-}
BENCH_BEFORE=${BENCH_BEFORE:-}
BENCH_DISK=${BENCH_DISK:-"$ROOT/target/bench-artifacts"}
BENCH_CALLGRIND=${BENCH_CALLGRIND:-0}
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
if [[ $BENCH_CALLGRIND == 1 ]] && ! command -v valgrind >/dev/null; then
    apt_install valgrind || die "valgrind did not install (BENCH_CALLGRIND=1 needs it)"
fi
if [[ $BENCH_WRK == 1 ]] && ! command -v wrk >/dev/null; then
    apt_install wrk || say "bench: wrk unavailable, the target's ceiling is not measured"
fi
command -v cargo >/dev/null || die "cargo is needed to build runproof"
NGINX=$(nginx_bin)
[[ -n $NGINX ]] || die "nginx did not install"
curl --help all 2>/dev/null | grep -q -- '--parallel-max' || die "this curl has no --parallel (needs 7.66+)"

# --- scratch space on tmpfs (nginx, check files); bundles on the real disk --
if [[ -d /dev/shm && -w /dev/shm ]]; then SCRATCH_PARENT=/dev/shm; else SCRATCH_PARENT=${TMPDIR:-/tmp}; fi
WORK=$(mktemp -d "$SCRATCH_PARENT/runproof-bench.XXXXXX")
mkdir -p "$BENCH_DISK"
DISK=$(mktemp -d "$BENCH_DISK/run.XXXXXX")
DISK_FS=$(stat -f -c %T "$DISK")
[[ $DISK_FS != tmpfs && $DISK_FS != ramfs ]] ||
    { say "bench: FAIL: BENCH_DISK ($DISK) is on $DISK_FS, not a real disk"; exit 1; }
# The token every check sends; a fresh random value per run, never printed.
BENCH_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BENCH_TOKEN
NGINX_PID=""
cleanup() {
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ $BENCH_KEEP == 1 ]]; then say "bench: kept $WORK and $DISK"; else rm -rf "$WORK" "$DISK"; fi
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

# Raw keep-alive ceiling of the target (no assertions, no results), in
# req/s; empty without wrk. Measured again before each row: a VM's speed can
# move by a fifth within the hour, and each row's share of the ceiling is
# taken against its own.
wrk_ceiling() {
    [[ $BENCH_WRK == 1 ]] && command -v wrk >/dev/null || return 0
    wrk -t 1 -c "$BENCH_CONCURRENCY" -d 3s "http://127.0.0.1:$BENCH_PORT/u/1" |
        awk '/^Requests\/sec:/ {printf "%d", $2}'
}
WRK_RPS=$(wrk_ceiling)
[[ -z $WRK_RPS ]] || say "bench: target ceiling (wrk -t1 -c$BENCH_CONCURRENCY, 3 s keep-alive): $WRK_RPS req/s"

# --- 3. build runproof --------------------------------------------------------
RUNPROOF=${BENCH_RUNPROOF:-"$ROOT/target/release/runproof"}
if wants runproof; then
    if [[ -z $BENCH_RUNPROOF ]]; then
        say "bench: cargo build --release"
        (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    fi
    "$RUNPROOF" sweep --help >/dev/null 2>&1 ||
        die "this runproof has no 'sweep' command (BENCH_TOOLS=curl measures only the peer)"
fi
if [[ -n $BENCH_BEFORE ]]; then
    "$BENCH_BEFORE" sweep --help >/dev/null 2>&1 || die "BENCH_BEFORE ($BENCH_BEFORE) has no 'sweep' command"
    BENCH_TOOLS="$BENCH_TOOLS before"
fi

# Writes N checks into $1/checks: layout "one" is a single file, "many" is
# files of 1,000 checks each. No [defaults]: the default policy (two
# retries). Every check sends `Authorization: Bearer {{secret:BENCH_TOKEN}}`.
# Also the matching curl config (the same header, then one url per check, so
# argv stays small) in $1/curl.cfg.
generate() {
    local dir=$1 n=$2 layout=$3
    mkdir -p "$dir/checks"
    {
        printf 'header = "Authorization: Bearer %s"\n' "$BENCH_TOKEN"
        awk -v n="$n" -v port="$BENCH_PORT" 'BEGIN {
            for (i = 1; i <= n; i++) printf "url = \"http://127.0.0.1:%d/u/%d\"\n", port, i
        }'
    } >"$dir/curl.cfg"
    awk -v n="$n" -v port="$BENCH_PORT" -v dir="$dir" -v layout="$layout" 'BEGIN {
        per = (layout == "one") ? n : 1000
        for (i = 1; i <= n; i++) {
            if ((i - 1) % per == 0) {
                if (f) close(f)
                f = sprintf("%s/checks/part-%05d.toml", dir, int((i - 1) / per))
                print "[secrets]\nrequired = [\"BENCH_TOKEN\"]\n" > f
            }
            printf "[[check]]\nid = \"c%07d\"\ncheck = \"http\"\nurl = \"http://127.0.0.1:%d/u/%d\"\nheaders = { Authorization = \"Bearer {{secret:BENCH_TOKEN}}\" }\nexpect = { status = 200, body_contains = \"ok\" }\n\n", i, port, i > f
        }
        close(f)
    }'
}

now_ns() { date +%s%N; }

# CPU seconds (user + system) the private nginx's master and workers have
# used so far, from /proc: what serving a sweep cost the target, read around
# it.
nginx_cpu() {
    local ticks
    ticks=$(for pid in "$NGINX_PID" $(pgrep -P "$NGINX_PID"); do
        awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null
    done | awk '{s += $1} END {print s + 0}')
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

# Runs one measured command; sets WALL (seconds), RSS (KB, peak of the
# command and everything it waited for, from GNU time), CPU (its user +
# system seconds, from GNU time), NGINX_CPU (what nginx used meanwhile) and
# T0 and T1 (its start and end, ns since the epoch) and returns its status.
measure() {
    local rss_file="$WORK/rss" status=0 nginx_before
    nginx_before=$(nginx_cpu)
    T0=$(now_ns)
    /usr/bin/time -f '%M %U %S' -o "$rss_file" "$@" || status=$?
    T1=$(now_ns)
    WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.4f", (b - a) / 1e9}')
    read -r RSS user system < <(tail -1 "$rss_file")
    CPU=$(awk -v u="$user" -v s="$system" 'BEGIN {printf "%.2f", u + s}')
    NGINX_CPU=$(awk -v a="$nginx_before" -v b="$(nginx_cpu)" 'BEGIN {printf "%.2f", b - a}')
    return "$status"
}

# Milliseconds of a fixed CPU-bound task (SHA-256 of 64 MiB of zeros, one
# core), measured before each row beside wrk's ceiling: a VM's speed can move
# by half within the hour, and this tells a slower machine from a slower
# build.
calibration() {
    local t0 t1
    t0=$(now_ns)
    head -c 67108864 /dev/zero | sha256sum >/dev/null
    t1=$(now_ns)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%d", (b - a) / 1e6}'
}

# Where a runproof sweep's wall time went, from its bundle at $1 and the
# last measure's T0 and T1: "head sweep tail" in ms, where head runs from
# exec to the journal's first record (run.start: validation, planning, the
# bundle's creation), sweep from there to its last (run.end), and tail from
# there to exit (reports, syncs, the seal). Records carry milliseconds.
phases() {
    local seal events first last
    seal=$(find "$1" -name seal.json -print -quit)
    [[ -n $seal ]] || return 0
    events="$(dirname "$seal")/events.jsonl"
    first=$(head -n 1 "$events" | sed -n 's/.*"t":"\([^"]*\)".*/\1/p')
    last=$(tail -n 1 "$events" | sed -n 's/.*"t":"\([^"]*\)".*/\1/p')
    [[ -n $first && -n $last ]] || return 0
    first=$(date -d "$first" +%s%N) && last=$(date -d "$last" +%s%N) || return 0
    awk -v t0="$T0" -v a="$first" -v b="$last" -v t1="$T1" \
        'BEGIN {printf "%d %d %d\n", (a - t0) / 1e6, (b - a) / 1e6, (t1 - b) / 1e6}'
}

# The peer: fetch every URL with the token header, status checked by --fail
# (any non-2xx fails the run), every body ("ok\n") to one pipe, and the lines
# that are exactly "ok" counted. Timed as one unit.
curl_sweep() {
    local dir=$1
    set -o pipefail
    curl --parallel --parallel-max "$BENCH_CONCURRENCY" --fail --silent --show-error \
        -K "$dir/curl.cfg" | grep -cx ok >"$dir/count"
}
export -f curl_sweep
export BENCH_CONCURRENCY

# Counts the user-space instructions of one sweep of $2 by the runproof at
# $1 under callgrind and prints them per check, less SHA-256's compression
# function: valgrind hides the CPU's SHA instructions, so SHA-256 runs in
# software there and would be some 40% of the count. The sweep runs as it
# would (streamed above 20,000 checks); its bundle goes to tmpfs scratch.
count_instructions() {
    local bin=$1 checks=$2 n=$3 out="$WORK/callgrind.out" art="$WORK/callgrind-bundle"
    rm -rf "$art" "$out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" sweep "$checks" \
        --concurrency "$BENCH_CONCURRENCY" --artifacts "$art" >/dev/null 2>"$WORK/callgrind.err" ||
        die "runproof under callgrind failed: $(tail -5 "$WORK/callgrind.err")"
    callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v n="$n" '
        /PROGRAM TOTALS/ && !total { gsub(",", "", $1); total = $1 }
        /sha2::sha256::compress256 \[/ && !sha { gsub(",", "", $1); sha = $1 }
        END { printf "%d", (total - sha) / n }'
    rm -rf "$art" "$out"
}

# For runproof, curl and before in turn, the medians of the row's $dir/TOOL.$1
# and $dir/TOOL.$2 ("- -" for a tool not measured).
medians() {
    local tool out=""
    for tool in runproof curl before; do
        if wants "$tool"; then
            out="$out $(median <"$dir/$tool.$1") $(median <"$dir/$tool.$2")"
        else
            out="$out - -"
        fi
    done
    echo "${out# }"
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
# "min–max" of the numbers on stdin (a row's runs: how far the machine moved).
spread() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s\n", lo, hi}'; }

RESULTS="$WORK/results"
SPREADS="$WORK/spreads"
CPUS="$WORK/cpus"
PHASES="$WORK/phases"
VERIFY="$WORK/verify"
INSTRUCTIONS="$WORK/instructions"
: >"$RESULTS"
: >"$SPREADS"
: >"$CPUS"
: >"$PHASES"
: >"$VERIFY"
: >"$INSTRUCTIONS"
for n in $BENCH_N; do
    for layout in $BENCH_LAYOUTS; do
        dir="$WORK/$layout-$n"
        generate "$dir" "$n" "$layout"
        ceiling=$(wrk_ceiling)
        calibrated=$(calibration)
        say "bench: N=$n layout=$layout: $(find "$dir/checks" -name '*.toml' | wc -l) check file(s), $BENCH_RUNS runs of each tool, alternating${ceiling:+; wrk ceiling $ceiling req/s}; calibration $calibrated ms"
        for tool in runproof before curl; do
            : >"$dir/$tool.wall" && : >"$dir/$tool.rss" && : >"$dir/$tool.phases"
            : >"$dir/$tool.cpu" && : >"$dir/$tool.nginx"
        done
        for run in $(seq "$BENCH_RUNS"); do
            for tool in $BENCH_TOOLS; do
                case $tool in
                runproof | before)
                    bin=$RUNPROOF
                    [[ $tool == before ]] && bin=$BENCH_BEFORE
                    art="$DISK/$tool-$layout-$n"
                    rm -rf "$art" && sync
                    measure "$bin" sweep "$dir/checks" --concurrency "$BENCH_CONCURRENCY" \
                        --artifacts "$art" >/dev/null 2>"$dir/$tool.err" ||
                        die "$tool sweep exited $? at N=$n $layout run $run: $(tail -5 "$dir/$tool.err")"
                    phases "$art" >>"$dir/$tool.phases"
                    ;;
                curl)
                    rm -f "$dir/count"
                    measure bash -c 'curl_sweep "$1"' _ "$dir" 2>"$dir/curl.err" ||
                        die "curl sweep failed at N=$n run $run: $(tail -5 "$dir/curl.err")"
                    count=$(cat "$dir/count")
                    [[ $count -eq $n ]] || die "curl: $count of $n bodies are ok at N=$n run $run"
                    ;;
                esac
                echo "$WALL" >>"$dir/$tool.wall" && echo "$RSS" >>"$dir/$tool.rss"
                echo "$CPU" >>"$dir/$tool.cpu" && echo "$NGINX_CPU" >>"$dir/$tool.nginx"
                say "  run $run $(printf '%-8s' "$tool"): ${WALL}s ${RSS}KB, CPU ${CPU}s (nginx ${NGINX_CPU}s)"
            done
        done
        echo "$layout $n $(medians wall rss) ${ceiling:-0}" >>"$RESULTS"
        spreads="$layout $n"
        for tool in runproof curl before; do
            if wants "$tool"; then spreads="$spreads $(spread <"$dir/$tool.wall")"; else spreads="$spreads -"; fi
        done
        echo "$spreads" >>"$SPREADS"
        echo "$layout $n $calibrated $(medians cpu nginx)" >>"$CPUS"
        for tool in runproof before; do
            [[ -s $dir/$tool.phases ]] || continue
            echo "$layout $n $tool $(for col in 1 2 3; do cut -d' ' -f$col "$dir/$tool.phases" | median; done | tr '\n' ' ')" >>"$PHASES"
        done

        if wants runproof; then
            # The last run's bundle: it must verify; verify's own time and memory.
            seal=$(find "$DISK/runproof-$layout-$n" -name seal.json -print -quit)
            [[ -n $seal ]] || die "no seal.json under the N=$n $layout artifacts"
            bundle=$(dirname "$seal")
            records=$(wc -l <"$bundle/events.jsonl")
            bytes=$(du -sb "$bundle" | cut -f1)
            files=$(find "$bundle" -type f | wc -l)
            status=0
            measure "$RUNPROOF" verify "$bundle" >"$dir/verify.out" 2>&1 || status=$?
            echo "$layout $n $status $WALL $RSS $records $files $bytes" >>"$VERIFY"
            [[ $status == 0 ]] || die "runproof verify rejected the N=$n $layout bundle: $(head -20 "$dir/verify.out")"
        fi
        if [[ $BENCH_CALLGRIND == 1 ]]; then
            for tool in runproof before; do
                wants "$tool" || continue
                bin=$RUNPROOF
                [[ $tool == before ]] && bin=$BENCH_BEFORE
                per_check=$(count_instructions "$bin" "$dir/checks" "$n")
                echo "$layout $n $tool $per_check" >>"$INSTRUCTIONS"
                say "  callgrind $(printf '%-8s' "$tool"): $per_check instructions a check"
            done
        fi
        [[ $BENCH_KEEP == 1 ]] || rm -rf "$dir" "$DISK/runproof-$layout-$n" "$DISK/before-$layout-$n"
    done
done

# --- 5. the comparison ------------------------------------------------------
echo
echo "runproof sweep vs curl --parallel: N distinct URLs, bearer token header, loopback nginx, concurrency $BENCH_CONCURRENCY, median of $BENCH_RUNS"
echo "runproof: default policy (2 retries), sealed bundle on $DISK_FS; machine: $(nproc) CPUs, ${CPU_MODEL:-unknown}"
CEILINGS=$(awk '$9 > 0 {print $9}' "$RESULTS" | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) printf "%d %d", lo, hi}')
echo "target: $("$NGINX" -v 2>&1 | sed 's/.*: //'), $BENCH_NGINX_WORKERS worker(s)${CEILINGS:+, wrk ceiling ${CEILINGS% *}–${CEILINGS#* } req/s (measured before each row)}"
echo
awk '
function cps(n, w) { return (w == "-" || w <= 0) ? "-" : sprintf("%d", n / w) }
function mb(k) { return k == "-" ? "-" : sprintf("%.1f", k / 1024) }
function us(n, w) { return (w == "-") ? "-" : sprintf("%.1f", w / n * 1e6) }
BEGIN {
    fmt = "%-6s %9s | %9s %9s %7s %8s | %9s %7s | %7s | %9s %7s | %6s\n"
    printf fmt, "layout", "N", "runproof", "checks/s", "us/chk", "RSS MB", "curl", "RSS MB", "rp/curl", "before", "RSS MB", "%wrk"
}
{
    ratio = ($3 == "-" || $5 == "-") ? "-" : sprintf("%.2f", $3 / $5)
    pw = ($3 == "-" || $9 <= 0) ? "-" : sprintf("%.0f%%", 100 * ($2 / $3) / $9)
    printf fmt, $1, $2, $3, cps($2, $3), us($2, $3), mb($4), $5, mb($6), ratio, $7, mb($8), pw
}' "$RESULTS"
echo
echo "rp/curl = runproof wall / curl wall (target <= 0.50). us/chk: runproof wall per check (flat = linear)."
echo "%wrk = runproof checks/s / the wrk ceiling measured just before that row (target >= 30%)."
if [[ -n $CEILINGS ]] && awk -v c="$CEILINGS" 'BEGIN {split(c, v, " "); exit !(v[2] > 1.10 * v[1])}'; then
    echo "warning: the target's ceiling moved by more than 10% during this run (${CEILINGS% *} to ${CEILINGS#* } req/s): the machine's speed changed, so compare rows with care."
fi
if [[ $BENCH_RUNS -gt 1 ]]; then
    echo
    echo "spread of each row's runs (min-max wall, s): a wide one means the machine's speed moved"
    awk '{printf "  %-4s N = %7d: runproof %s, curl %s, before %s\n", $1, $2, $3, $4, $5}' "$SPREADS"
fi
if [[ -s $CPUS ]]; then
    echo
    echo "CPU seconds (medians; user + system, GNU time) of each tool, and of nginx serving it; calibration: ms of SHA-256 over 64 MiB on one core, before the row"
    printf '  %-4s %9s %6s | %8s %6s | %8s %6s | %8s %6s\n' layout N calib runproof nginx curl nginx before nginx
    awk '{printf "  %-4s %9d %6s | %8s %6s | %8s %6s | %8s %6s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}' "$CPUS"
fi
if [[ -s $PHASES ]]; then
    echo
    echo "where runproof's wall time went (medians, ms): exec to run.start (validation, plan, bundle), the sweep, run.end to exit (reports, syncs, seal)"
    awk '{printf "  %-4s N = %7d %-8s %6d %8d %6d\n", $1, $2, $3, $4, $5, $6}' "$PHASES"
fi
if wants runproof; then
    echo
    echo "runproof verify of each layout's last bundle:"
    awk '{printf "  %-4s N = %7d: exit %s, %.2f s, %.1f MB RSS; %d records, %d files, %d bytes\n", $1, $2, $3, $4, $5 / 1024, $6, $7, $8}' "$VERIFY"
fi
if [[ -s $INSTRUCTIONS ]]; then
    echo
    echo "instructions a check (callgrind: user space, less SHA-256's compression; one sweep each):"
    awk '{printf "  %-4s N = %7d %-8s %9d\n", $1, $2, $3, $4}' "$INSTRUCTIONS"
fi
