#!/usr/bin/env bash
# exflow side by side with the tools people use today, on the same synthetic capture, in one
# run (absolute times drift on shared machines; the ratios are what the targets are about).
#
#   benches/compare.sh            # as root it installs missing tools with apt-get
#
# 1. Builds exflow and the synthesizer (release), writes a 1,000,000-packet Exchange-site
#    capture (examples/synth.rs, seed 1) and a 2,000,000-SYN flood capture.
# 2. Times, in interleaved rounds (median of 5, with min and max, and peak RSS):
#      exflow analyze F --site S --format json --flows /dev/null   (full report plus flows)
#      tcpdump -r F -w /dev/null
#      softflowd -r F -n 127.0.0.1:9 -d -v 9 -6 -c none            (NetFlow v9, IPv6 too)
#      nfpcapd -r F -w DIR                                          (nfdump's flow meter)
#      tshark -q -z conv,tcp -r F
# 3. Analyses the flood capture with default settings (no site file, default flow table),
#    bounded by a timeout, and checks that the report names the flood's target.
# 3b. Connection records: writes a Zeek conn.log (TSV) and a Suricata eve.json of RECORDS
#    connections (awk, deterministic; eve.json with a DNS event every tenth line, which
#    readers skip), and times in interleaved rounds what users would otherwise run over them:
#      exflow analyze conn.log --format json       awk over conn.log (connections per state)
#      exflow analyze eve.json --format json       jq -c 'select(.event_type=="flow")' eve.json
#    and cat of each (the floor).
# 4. Counts allocations per packet per stage (`cargo bench --bench pipeline`).
# 5. Writes BENCHMARKS.md (machine facts, the table, the commands).
#
# BASELINE=<commit> also builds that commit (in a temporary git worktree) and times its exflow
# as one more tool, "exflow@<commit>", in the same interleaved rounds: on a machine other than
# the one BENCHMARKS.md was written on, the ratios of the two builds to the same tools tell
# whether a change kept them (absolute times and even ratios move with the host's memory copy
# speed, the `cat` row).
#
# Environment: RUNS (5), PACKETS (1000000), FLOOD (2000000), RECORDS (1000000), SEED (1),
# FLOOD_TIMEOUT (180 s),
# TOOL_TIMEOUT (120 s, any single timed run), SETTLE (1 s between warming the page cache and a
# timed run),
# WORK (a temporary directory, removed at exit unless KEEP=1), OUT (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

RUNS=${RUNS:-5}
PACKETS=${PACKETS:-1000000}
FLOOD=${FLOOD:-2000000}
RECORDS=${RECORDS:-1000000}
SEED=${SEED:-1}
FLOOD_TIMEOUT=${FLOOD_TIMEOUT:-180}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-120}
SETTLE=${SETTLE:-1}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
WORK=${WORK:-$(mktemp -d /tmp/exflow-compare.XXXXXX)}
KEEP=${KEEP:-0}
mkdir -p "$WORK"
cleanup() { if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

say() { printf '== %s\n' "$*" >&2; }

# --- tools ------------------------------------------------------------------------------------
APT_UPDATED=0
install_pkg() {
  if [ "$(id -u)" != 0 ]; then
    return 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
need() { # command package
  if ! command -v "$1" >/dev/null 2>&1; then
    say "installing $2"
    install_pkg "$2" || { echo "compare.sh: $1 missing (apt-get install $2, as root)" >&2; exit 2; }
  fi
}
need tcpdump tcpdump
need tshark tshark
need jq jq
if [ ! -x /usr/bin/time ]; then
  install_pkg time || { echo "compare.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 2; }
fi
# The flow meters: softflowd, and nfdump's nfpcapd; at least one of them.
if ! command -v softflowd >/dev/null 2>&1; then
  say "installing softflowd"
  install_pkg softflowd || true
fi
if ! command -v nfpcapd >/dev/null 2>&1; then
  say "installing nfdump (nfpcapd)"
  install_pkg nfdump || true
fi
if ! command -v softflowd >/dev/null 2>&1 && ! command -v nfpcapd >/dev/null 2>&1; then
  echo "compare.sh: no flow meter (softflowd or nfdump's nfpcapd) available" >&2
  exit 2
fi

# --- build and captures -----------------------------------------------------------------------
say "building exflow and the synthesizer (release)"
cargo build --release --quiet --bin exflow --example synth
EXFLOW=$ROOT/target/release/exflow
SYNTH=$ROOT/target/release/examples/synth
BASELINE=${BASELINE:-}
BASE_NAME=
if [ -n "$BASELINE" ]; then
  BASE_REV=$(git rev-parse --short "$BASELINE")
  BASE_NAME="exflow@$BASE_REV"
  say "building $BASE_NAME (release, in a temporary worktree)"
  git worktree add --detach --force "$WORK/baseline" "$BASELINE" >/dev/null 2>&1
  (cd "$WORK/baseline" && CARGO_TARGET_DIR="$WORK/baseline-target" cargo build --release --quiet --bin exflow)
  BASE_EXFLOW=$WORK/baseline-target/release/exflow
  cleanup() {
    git -C "$ROOT" worktree remove --force "$WORK/baseline" >/dev/null 2>&1 || true
    if [ "$KEEP" != 1 ]; then rm -rf "$WORK"; fi
  }
fi

CAP=$WORK/site.pcap
SITE=$WORK/site.toml
FLOODCAP=$WORK/flood.pcap
say "writing the $PACKETS-packet capture"
t0=$EPOCHREALTIME
"$SYNTH" --packets "$PACKETS" --seed "$SEED" --out "$CAP" --truth "$WORK/site.truth.json" \
  --site "$SITE" 2>"$WORK/synth.err"
t1=$EPOCHREALTIME
SYNTH_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
say "writing the $FLOOD-SYN flood capture"
"$SYNTH" --flood "$FLOOD" --seed "$SEED" --out "$FLOODCAP" --truth "$WORK/flood.truth.json" \
  2>>"$WORK/synth.err"
CAP_BYTES=$(stat -c %s "$CAP")
FLOOD_BYTES=$(stat -c %s "$FLOODCAP")
CONNS=$(sed -n 's/^  "connections": \([0-9]*\),$/\1/p' "$WORK/site.truth.json")
# Into the page cache, so that every tool reads from memory, as if read from disk: the pages
# the synthesizer wrote are dropped (dd's nocache flag) and read back. Written pages sit in the
# cache in the small pieces they were written in; pages read back come in 2 MiB pieces on this
# kind of kernel (ext4 large folios, 8 MiB read-ahead), and copying the file out of them costs
# less than half as much (cat of this capture: 0.05 s as written, 0.02 s read back). Any tool
# reading a capture that came from disk or from another machine sees the second state.
HUGE0=$(awk '/^FileHugePages:/ { print $2 }' /proc/meminfo)
dd if="$CAP" iflag=nocache count=0 status=none
dd if="$FLOODCAP" iflag=nocache count=0 status=none
cat "$CAP" "$FLOODCAP" >/dev/null
HUGE1=$(awk '/^FileHugePages:/ { print $2 }' /proc/meminfo)

# --- the timed tools --------------------------------------------------------------------------
NFDIR=$WORK/nfpcapd
mkdir -p "$NFDIR"
TOOLS=(exflow cat tcpdump)
declare -A CMD
CMD[exflow]="$EXFLOW analyze $CAP --site $SITE --format json --flows /dev/null"
if [ -n "$BASE_NAME" ]; then
  TOOLS+=("$BASE_NAME")
  CMD[$BASE_NAME]="$BASE_EXFLOW analyze $CAP --site $SITE --format json --flows /dev/null"
fi
# The floor: reading the file once, doing nothing with it.
CMD[cat]="cat $CAP"
CMD[tcpdump]="tcpdump -r $CAP -w /dev/null"
if command -v softflowd >/dev/null 2>&1; then
  TOOLS+=(softflowd)
  # -c none: no control socket. With one, softflowd 1.1.0 reading a file may block forever in
  # accept(): it tests the poll() result of the socket without calling poll() for files.
  CMD[softflowd]="softflowd -r $CAP -n 127.0.0.1:9 -d -v 9 -6 -c none -p $WORK/softflowd.pid"
fi
if command -v nfpcapd >/dev/null 2>&1; then
  TOOLS+=(nfpcapd)
  CMD[nfpcapd]="nfpcapd -r $CAP -w $NFDIR"
fi
TOOLS+=(tshark)
CMD[tshark]="tshark -q -z conv,tcp -r $CAP"

# The share of the capture in the page cache, appended to $WORK/NAME.resident (fincore, from
# util-linux; nothing is logged without it).
resident() {
  if command -v fincore >/dev/null 2>&1; then
    fincore -b -n -o RES "$CAP" 2>/dev/null |
      awk -v size="$CAP_BYTES" '{ printf "%.1f\n", 100 * $1 / size }' >>"$WORK/$1.resident"
  fi
}

# One run: wall seconds (bash's clock) and peak RSS in KiB (GNU time), appended to files.
run_one() {
  local name=$1
  local t0 t1
  rm -rf "${NFDIR:?}"/*
  # Dropped from the page cache and read back before every run, untimed. This kind of machine
  # pages part of the cache out within seconds (tens of MB of the file after a 5 s tshark
  # run), and whichever tool ran first after that would read those pages from disk; what it
  # reads back then sits in smaller pieces than a fresh read from disk leaves (see the notes
  # on page-cache folios), so that the cost of copying the file drifted over a run. Every
  # tool starts from the same state: the whole capture just read from disk. Residency and
  # the kernel's count of file pages in 2 MiB folios are logged per run.
  # Then a second for the machine to settle: a run started right after that 691 MB read was
  # slower (exflow, 12 interleaved runs each: 0.094 s median at once, 0.083 s after 0.5 s).
  dd if="$CAP" iflag=nocache count=0 status=none
  cat "$CAP" >/dev/null
  resident "$name"
  awk '/^FileHugePages:/ { print int($2 / 1024) }' /proc/meminfo >>"$WORK/$name.huge"
  sleep "$SETTLE"
  t0=$EPOCHREALTIME
  # shellcheck disable=SC2086 # the command line is split on purpose
  if ! /usr/bin/time -f '%M' -o "$WORK/$name.rss1" timeout "$TOOL_TIMEOUT" ${CMD[$name]} \
    >/dev/null 2>>"$WORK/$name.err"; then
    echo "compare.sh: $name failed: ${CMD[$name]} (see $WORK/$name.err)" >&2
    tail -5 "$WORK/$name.err" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' >>"$WORK/$name.wall"
  tail -1 "$WORK/$name.rss1" >>"$WORK/$name.rss"
}

for name in "${TOOLS[@]}"; do : >"$WORK/$name.wall"; : >"$WORK/$name.rss"; : >"$WORK/$name.resident"; done
# Each round starts one tool further on, so that no tool always runs right after the same
# other one (exflow, first in every round, always followed tshark's 5 s and 1.3 GB; measured
# right after a tshark run, then again without one: medians 72.6 and 67.2 ms, 8 pairs; a
# hint more than a proof on this noisy machine, but the rotation costs nothing).
NTOOLS=${#TOOLS[@]}
for round in $(seq 1 "$RUNS"); do
  for k in $(seq 0 $((NTOOLS - 1))); do
    name=${TOOLS[$(((round - 1 + k) % NTOOLS))]}
    say "round $round/$RUNS: $name"
    run_one "$name"
  done
done

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minimum() { sort -g "$1" | head -1 | awk '{ printf "%.3f", $1 }'; }
maximum() { sort -g "$1" | tail -1 | awk '{ printf "%.3f", $1 }'; }
peak_mib() { sort -g "$1" | tail -1 | awk '{ printf "%.1f", $1 / 1024 }'; }

declare -A MED
for name in "${TOOLS[@]}"; do MED[$name]=$(median "$WORK/$name.wall"); done

# exflow's time as a share of each tool's, against the issue's targets.
declare -A TARGET
TARGET[cat]="-"
TARGET[tcpdump]="0.6"
TARGET[softflowd]="0.3333"
TARGET[nfpcapd]="-"
TARGET[tshark]="0.016667"
declare -A TARGET_TEXT
TARGET_TEXT[cat]="(floor)"
TARGET_TEXT[tcpdump]="≤ 0.6"
TARGET_TEXT[softflowd]="≤ 1/3"
TARGET_TEXT[nfpcapd]="(none)"
TARGET_TEXT[tshark]="≤ 1/60"
if [ -n "$BASE_NAME" ]; then
  TARGET[$BASE_NAME]="-"
  TARGET_TEXT[$BASE_NAME]="(baseline)"
fi

ratio() { awk -v a="${MED[exflow]}" -v b="${MED[$1]}" 'BEGIN { printf "%.3f", a / b }'; }
met() {
  local t=${TARGET[$1]}
  if [ "$t" = "-" ]; then echo "—"; return; fi
  awk -v r="$(ratio "$1")" -v t="$t" 'BEGIN { print (r <= t) ? "yes" : "**no**" }'
}

# --- the flood --------------------------------------------------------------------------------
say "flood: exflow analyze (default settings, timeout ${FLOOD_TIMEOUT}s)"
FLOOD_CMD="$EXFLOW analyze $FLOODCAP --format json"
t0=$EPOCHREALTIME
set +e
# shellcheck disable=SC2086
/usr/bin/time -f '%M' -o "$WORK/flood.rss" timeout "$FLOOD_TIMEOUT" $FLOOD_CMD \
  >"$WORK/flood.report.json" 2>"$WORK/flood.err"
FLOOD_RC=$?
set -e
t1=$EPOCHREALTIME
FLOOD_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
FLOOD_RSS=$(grep -E '^[0-9]+$' "$WORK/flood.rss" | tail -1 | awk '{ printf "%.1f", $1 / 1024 }')
FLOOD_TARGET=198.51.100.10
if [ "$FLOOD_RC" = 124 ]; then
  FLOOD_DONE="no: killed after ${FLOOD_TIMEOUT} s"
  FLOOD_RSS="≥ ${FLOOD_RSS:-?} (when killed)"
  FLOOD_NAMED="no report"
elif [ "$FLOOD_RC" != 0 ]; then
  FLOOD_DONE="no: exit $FLOOD_RC"
  FLOOD_NAMED="no report"
else
  FLOOD_DONE="yes"
  if tr -d ' \n' <"$WORK/flood.report.json" | grep -qE "\"floods\":\[[^]]*\"target\":\"$FLOOD_TARGET\""; then
    FLOOD_NAMED="yes (floods[]: $FLOOD_TARGET port 443)"
  else
    FLOOD_NAMED="**no**"
  fi
fi
FLOOD_MET=$(awk -v m="${FLOOD_RSS%% *}" -v d="$FLOOD_DONE" 'BEGIN { print (d == "yes" && m < 256) ? "yes" : "**no**" }')

# --- connection records -----------------------------------------------------------------------
# A conn.log and an eve.json of $RECORDS connections to a Mailbox (the states a site's log
# holds: SF, S0, REJ, RSTR, in the mix of benches/pipeline.rs), and the tools a user would
# otherwise point at them. The awk and jq programs sit in files: the commands are split on
# spaces like the others.
CONNLOG=$WORK/conn.log
EVEJSON=$WORK/eve.json
say "writing a $RECORDS-connection conn.log and eve.json"
awk -v n="$RECORDS" -v conn="$CONNLOG" -v eve="$EVEJSON" 'BEGIN {
  split("SF S0 REJ RSTR", st, " "); split("ShADadFf S Sr ShADadr", hi, " ")
  split("10 3 1 6", op, " "); split("8 0 1 5", rp, " ")
  split("1b 02 02 1a", fts, " "); split("1b 00 14 1e", ftc, " ")
  split("25 443 80 587 993", ports, " ")
  printf "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n" > conn
  printf "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n" > conn
  printf "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n" > conn
  for (i = 0; i < n; i++) {
    k = (i % 37) % 4 + 1; a = int(i / 256) % 256; b = i % 256; p = ports[i % 5 + 1]
    # From 2023-11-14 00:00:00 UTC, a connection every 0.5 ms (the day lasts 172 million).
    sp = 1024 + i % 60000; x = i * 0.0005; t = 1699920000 + x
    printf "%.6f\tC%017d\t203.0.%d.%d\t%d\t192.0.2.10\t%d\ttcp\t-\t1.5\t100\t2000\t%s\tF\tT\t0\t%s\t%d\t%d\t%d\t%d\t-\n", \
      t, i, a, b, sp, p, st[k], hi[k], op[k], op[k] * 60, rp[k], rp[k] * 60 > conn
    s = int(x); us = int((x - s) * 1000000 + 0.5)
    ts = sprintf("2023-11-14T%02d:%02d:%02d", int(s / 3600), int(s / 60) % 60, s % 60)
    e = s + 1  # the end, 1.5 s later: the duration in conn.log
    us2 = us + 500000; if (us2 >= 1000000) { e++; us2 -= 1000000 }
    te = sprintf("2023-11-14T%02d:%02d:%02d", int(e / 3600), int(e / 60) % 60, e % 60)
    printf "{\"timestamp\":\"%s.%06d+0000\",\"flow_id\":%d,\"event_type\":\"flow\",\"src_ip\":\"203.0.%d.%d\",\"src_port\":%d,\"dest_ip\":\"192.0.2.10\",\"dest_port\":%d,\"proto\":\"TCP\",\"flow\":{\"pkts_toserver\":%d,\"pkts_toclient\":%d,\"bytes_toserver\":%d,\"bytes_toclient\":%d,\"start\":\"%s.%06d+0000\",\"end\":\"%s.%06d+0000\",\"age\":1,\"state\":\"closed\",\"reason\":\"timeout\",\"alerted\":false},\"tcp\":{\"tcp_flags\":\"1f\",\"tcp_flags_ts\":\"%s\",\"tcp_flags_tc\":\"%s\"}}\n", \
      ts, us, i + 1, a, b, sp, p, op[k], rp[k], op[k] * 60, rp[k] * 60, ts, us, te, us2, fts[k], ftc[k] > eve
    if (i % 10 == 9)
      printf "{\"timestamp\":\"%s.%06d+0000\",\"flow_id\":%d,\"event_type\":\"dns\",\"src_ip\":\"198.51.100.10\",\"src_port\":%d,\"dest_ip\":\"203.0.113.53\",\"dest_port\":53,\"proto\":\"UDP\",\"dns\":{\"type\":\"query\",\"id\":%d,\"rrname\":\"mail.example.com\",\"rrtype\":\"MX\"}}\n", \
        ts, us, n + i + 1, sp, i % 65536 > eve
  }
}'
RECORD_LINES=$(( $(wc -l <"$CONNLOG") ))
EVE_LINES=$(( $(wc -l <"$EVEJSON") ))
CONNLOG_BYTES=$(stat -c %s "$CONNLOG")
EVE_BYTES=$(stat -c %s "$EVEJSON")
# What a user would write: connections per conn_state (the column found by name, as
# zeek-cut does), and the flow events out of eve.json.
cat >"$WORK/states.awk" <<'AWK'
BEGIN { FS = "\t" }
/^#fields/ { for (i = 2; i <= NF; i++) if ($i == "conn_state") c = i - 1; next }
/^#/ { next }
{ n[$c]++ }
END { for (s in n) print s, n[s] }
AWK
printf '%s\n' 'select(.event_type == "flow")' >"$WORK/flows.jq"
RTOOLS=("exflow conn.log" "awk conn.log" "cat conn.log" "exflow eve.json" "jq eve.json" "cat eve.json")
declare -A RCMD RFILE
RCMD["exflow conn.log"]="$EXFLOW analyze $CONNLOG --format json"
RCMD["awk conn.log"]="awk -f $WORK/states.awk $CONNLOG"
RCMD["cat conn.log"]="cat $CONNLOG"
RCMD["exflow eve.json"]="$EXFLOW analyze $EVEJSON --format json"
RCMD["jq eve.json"]="jq -c -f $WORK/flows.jq $EVEJSON"
RCMD["cat eve.json"]="cat $EVEJSON"
for name in "${RTOOLS[@]}"; do
  case $name in *conn.log) RFILE[$name]=$CONNLOG ;; *) RFILE[$name]=$EVEJSON ;; esac
done
# The answers agree: as many flow events as connections, the states' counts the same.
if [ "$(jq -c -f "$WORK/flows.jq" "$EVEJSON" | wc -l)" != "$RECORDS" ]; then
  echo "compare.sh: jq did not find $RECORDS flow events in $EVEJSON" >&2
  exit 1
fi
# One run, as run_one but with the log as the file put back into the page cache. Files are
# named after the tool with its spaces and dots replaced.
run_rec() {
  local name=$1 f
  local t0 t1
  f=$WORK/rec-${name//[ .]/-}
  dd if="${RFILE[$name]}" iflag=nocache count=0 status=none
  cat "${RFILE[$name]}" >/dev/null
  sleep "$SETTLE"
  t0=$EPOCHREALTIME
  # shellcheck disable=SC2086 # the command line is split on purpose
  if ! /usr/bin/time -f '%M' -o "$f.rss1" timeout "$TOOL_TIMEOUT" ${RCMD[$name]} \
    >/dev/null 2>>"$f.err"; then
    echo "compare.sh: $name failed: ${RCMD[$name]} (see $f.err)" >&2
    tail -5 "$f.err" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' >>"$f.wall"
  tail -1 "$f.rss1" >>"$f.rss"
}
for name in "${RTOOLS[@]}"; do f=$WORK/rec-${name//[ .]/-}; : >"$f.wall"; : >"$f.rss"; done
NRTOOLS=${#RTOOLS[@]}
for round in $(seq 1 "$RUNS"); do
  for k in $(seq 0 $((NRTOOLS - 1))); do
    name=${RTOOLS[$(((round - 1 + k) % NRTOOLS))]}
    say "records round $round/$RUNS: $name"
    run_rec "$name"
  done
done
declare -A RMED
for name in "${RTOOLS[@]}"; do RMED[$name]=$(median "$WORK/rec-${name//[ .]/-}.wall"); done
# exflow's time for the same file as a share of the tool's.
rratio() {
  local ex="exflow ${1#* }"
  awk -v a="${RMED[$ex]}" -v b="${RMED[$1]}" 'BEGIN { printf "%.3f", a / b }'
}

# --- allocations ------------------------------------------------------------------------------
# Counted, not timed: benches/pipeline.rs runs each stage over the samples under a counting
# global allocator (a warm-up round, then 7 counted ones). After the timings, so that the
# build does not disturb them.
say "allocations per packet: cargo bench --bench pipeline"
if ! cargo bench --quiet --bench pipeline >"$WORK/bench.out" 2>"$WORK/bench.err"; then
  echo "compare.sh: cargo bench failed (see $WORK/bench.err)" >&2
  exit 1
fi
# The steady-state stages (decode, flow update, the one-thread engine) must count none.
ALLOC_MET=$(awk '
  /allocations\/packet/ && !/^analyze/ {
    n++
    for (i = 1; i <= NF; i++) if ($i == "allocations/packet") a = $(i - 1)
    if (a + 0 != 0) bad++
  }
  END { print (n >= 3 && bad == 0) ? "yes" : "**no**" }' "$WORK/bench.out")

# --- BENCHMARKS.md ----------------------------------------------------------------------------
say "writing $OUT"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
GIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no -- . ':!BENCHMARKS.md' 2>/dev/null)" ]; then GIT="$GIT (with uncommitted changes)"; fi
ver() { "$@" 2>/dev/null | head -1 || true; }
{
  echo "# Benchmarks"
  echo
  echo "Regenerated by \`benches/compare.sh\`; do not edit by hand. Every figure below comes from"
  echo "one run of the script, the tools side by side in interleaved rounds on the same capture"
  echo "read from the page cache (put back there before every run); absolute times drift on shared"
  echo "machines, the ratios are what the targets (issue 6) are about."
  echo
  echo "## Machine"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date (UTC) | $(date -u '+%Y-%m-%d %H:%M') |"
  echo "| CPUs (nproc) | $(nproc) |"
  echo "| CPU | $CPU |"
  echo "| memory | $MEM |"
  echo "| kernel | $(uname -r) |"
  echo "| rustc | $(rustc -V) |"
  echo "| exflow | $("$EXFLOW" --version 2>/dev/null | head -1), commit $GIT |"
  echo "| tcpdump | $(ver tcpdump --version) |"
  echo "| tshark | $(ver tshark -v) |"
  echo "| awk | $(awk -W version 2>&1 </dev/null | head -1 || true) |"
  echo "| jq | $(ver jq --version) |"
  if command -v softflowd >/dev/null 2>&1; then
    echo "| softflowd | $(softflowd -h 2>&1 | grep -m1 -o 'softflowd version [0-9][0-9.]*[0-9]' || echo softflowd) |"
  fi
  if command -v nfpcapd >/dev/null 2>&1; then
    echo "| nfpcapd | $(nfpcapd -V 2>&1 | head -1 || echo nfpcapd) |"
  fi
  echo
  echo "## The capture"
  echo
  echo "\`$(basename "$SYNTH") --packets $PACKETS --seed $SEED\` (examples/synth.rs): $PACKETS packets,"
  echo "$CAP_BYTES bytes, ${CONNS:-?} connections of a troubled Exchange site (HTTPS dominant; HTTP,"
  echo "SMTP in and out, submission, DNS; dropped, refused, rejected, cut and one-sided"
  echo "connections; IPv6 and 802.1Q for a share), written in $SYNTH_S s. Payloads carry each"
  echo "protocol's framing (TLS 1.3 records from the ClientHello on, the SMTP dialogue up to"
  echo "STARTTLS, HTTP requests and IIS redirects, DNS over TCP), so that tshark dissects what a"
  echo "real site carries; exflow reads only headers."
  echo
  echo "## Throughput ($RUNS runs each, seconds of wall time)"
  echo
  echo "| tool | median | min | max | peak RSS (MiB) | exflow ÷ tool | target | met |"
  echo "|---|---:|---:|---:|---:|---:|---|---|"
  for name in "${TOOLS[@]}"; do
    if [ "$name" = exflow ]; then
      r="1"; t="—"; m="—"
    else
      r=$(ratio "$name"); t=${TARGET_TEXT[$name]}; m=$(met "$name")
    fi
    echo "| $name | ${MED[$name]} | $(minimum "$WORK/$name.wall") | $(maximum "$WORK/$name.wall") | $(peak_mib "$WORK/$name.rss") | $r | $t | $m |"
  done
  echo
  echo "Packets per second, exflow (median): $(awk -v p="$PACKETS" -v s="${MED[exflow]}" 'BEGIN { printf "%.0f", p / s }')."
  if [ -n "$BASE_NAME" ]; then
    echo
    echo "Against the baseline build ($BASE_NAME, same rounds), the ratios of each build:"
    echo
    echo "| tool | exflow ÷ tool | $BASE_NAME ÷ tool | change |"
    echo "|---|---:|---:|---:|"
    for name in tcpdump softflowd nfpcapd tshark; do
      [ -n "${MED[$name]:-}" ] || continue
      awk -v a="${MED[exflow]}" -v b="${MED[$BASE_NAME]}" -v t="${MED[$name]}" -v n="$name" \
        'BEGIN { printf "| %s | %.3f | %.3f | %+.1f %% |\n", n, a / t, b / t, (a / b - 1) * 100 }'
    done
  fi
  echo
  echo "The tools ran in $RUNS interleaved rounds, each round starting one tool further on (no"
  echo "tool always right after the same other one)."
  echo "Before every timed run the capture was dropped from the page cache (\`dd iflag=nocache\`)"
  echo "and read back (\`cat\`), untimed, so that every tool found it there as a capture just read"
  echo "from disk (see the notes on page-cache folios below); then the machine was left idle for"
  echo "$SETTLE s."
  if [ -s "$WORK/exflow.resident" ]; then
    echo "The share of the capture resident just before each run (\`fincore\`), over all"
    echo "$(( RUNS * ${#TOOLS[@]} )) runs: min $(cat "$WORK"/*.resident | sort -g | head -1) %, max $(cat "$WORK"/*.resident | sort -g | tail -1) %."
  fi
  echo "File pages in 2 MiB folios (\`FileHugePages\`, /proc/meminfo) just before each run:"
  echo "$(sort -n "$WORK"/*.huge | head -1)–$(sort -n "$WORK"/*.huge | tail -1) MiB (the capture is $((CAP_BYTES / 1048576)) MiB; after the synthesizer wrote both"
  echo "captures: $((HUGE0 / 1024)) MiB, after they were first read back: $((HUGE1 / 1024)) MiB)."
  echo
  echo "## SYN flood ($FLOOD SYNs from distinct sources, never answered)"
  echo
  echo "\`$(basename "$SYNTH") --flood $FLOOD --seed $SEED\`: $FLOOD_BYTES bytes; sources from"
  echo "198.18.0.0/15 (131,072 addresses, then distinct source ports: every SYN its own"
  echo "connection) to $FLOOD_TARGET port 443 at 100,000 SYNs/s. exflow with default settings."
  echo
  echo "| wall (s) | peak RSS (MiB) | finished | report names the target | target: peak < 256 MiB | met |"
  echo "|---:|---:|---|---|---|---|"
  echo "| $FLOOD_S | ${FLOOD_RSS:-?} | $FLOOD_DONE | $FLOOD_NAMED | < 256 | $FLOOD_MET |"
  echo
  echo "## Connection records ($RECORDS connections, $RUNS runs each, seconds of wall time)"
  echo
  echo "A generated Zeek conn.log (TSV, $RECORD_LINES lines, $CONNLOG_BYTES bytes) and Suricata"
  echo "eve.json ($EVE_LINES lines, $EVE_BYTES bytes: a flow event per connection and a DNS"
  echo "event every tenth line) of connections to a Mailbox (SF, S0, REJ and RSTR, as in"
  echo "benches/pipeline.rs), each tool over the file just read back into the page cache,"
  echo "in interleaved rounds. exflow gives the whole report (records mapped onto flows,"
  echo "verdicts); awk counts connections per conn_state (the column found by name from"
  echo "\`#fields\`, as \`zeek-cut\` does); jq picks the flow events (\`select(.event_type == \"flow\")\`)."
  echo
  echo "| tool | median | min | max | peak RSS (MiB) | exflow ÷ tool | records/s (median) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for name in "${RTOOLS[@]}"; do
    f=$WORK/rec-${name//[ .]/-}
    case $name in exflow*) r="1" ;; *) r=$(rratio "$name") ;; esac
    echo "| $name | ${RMED[$name]} | $(minimum "$f.wall") | $(maximum "$f.wall") | $(peak_mib "$f.rss") | $r | $(awk -v n="$RECORDS" -v s="${RMED[$name]}" 'BEGIN { printf "%.0f", n / s }') |"
  done
  echo
  echo "## Allocations per packet (counted, not timed)"
  echo
  echo "\`cargo bench --bench pipeline\` (benches/pipeline.rs): each stage over the samples in"
  echo "memory, under a counting global allocator, a warm-up round then 7 counted rounds:"
  echo
  echo '```'
  cat "$WORK/bench.out"
  echo '```'
  echo
  echo "Target: zero heap allocations per packet in steady state (decode, flow update, and the"
  echo "engine that also aggregates and writes \`--flows\`): met: $ALLOC_MET. The \`analyze\` line"
  echo "is the whole three-thread run over the sample files given many times over: what it"
  echo "counts is per file opened (buffers, names), as the line under it says, not per packet."
  echo
  echo "## What the design rests on"
  echo
  echo "Measured while building it (\`perf stat\`, \`perf record\`/\`perf annotate\`, \`valgrind"
  echo "--tool=callgrind\` on a 100,000-packet capture, on this machine; not re-run by this"
  echo "script). Kept:"
  echo
  echo "- Three threads: reading, filtering and decoding on one; copies and the flow table on"
  echo "  the second, fed batches of 1,024 decoded packets; \`--flows\` lines, counters and"
  echo "  aggregation on the third, fed batches of 256 finished connections (~6,000 instructions"
  echo "  a connection, a seventh of the tracking thread's work when it ran there: wall 80.0 →"
  echo "  74.6 ms, median of 16 interleaved runs). Batches are recycled: no allocation."
  echo "- Up to 64 batches queued between the threads (~7 MiB) rather than 4: the queue rides"
  echo "  out the moments one thread is held up (a sweep of the table, a virtual CPU the host"
  echo "  took away) without stalling the other: 71.7 → 64.0 ms (medians of 20 interleaved)."
  echo "- Flows in a slab with a foldhash index; per-slot expiry and eviction rank in a dense"
  echo "  array, so the once-a-second sweep and the choice of a victim read 16 bytes per flow"
  echo "  (a 2,000,000-SYN flood went from 9.6 s to 2.4 s, 311 MB to 135 MB)."
  echo "- A 64 KiB copy filter (multi-interface duplicates): the 384 KiB one missed the cache on"
  echo "  most packets once the file's bytes streamed through it (a quarter of the run)."
  echo "- Records read in place, without pcap-parser's move of half its buffer at every other"
  echo "  consume; flow keys compared as 128-bit numbers (CPU 229 → 195 ms)."
  echo "- \`--flows\` lines written field by field instead of through serde_json's derived"
  echo "  serializer (byte-equal, tested), a connection's history compared as bytes rather than"
  echo "  validated as UTF-8 on every packet, records framed without a dynamic call: CPU"
  echo "  165 → 153 ms, wall 0.102 → 0.094 s (\`perf stat -r 8\`, interleaved)."
  echo "- No value copied on the hot path right after it was built. A struct assembled a byte or"
  echo "  two at a time and then copied with wide loads stalls the CPU on each such load (store"
  echo "  forwarding fails when a load spans several stores): \`perf annotate\` put a fifth of"
  echo "  the tracking thread on two loads of a flow endpoint (\`[u8; 16]\` + \`u16\` + \`bool\`),"
  echo "  and a tenth of the reading thread on the copy of each decoded packet into its batch."
  echo "  Endpoints are now three machine words built in registers, and packets are decoded in"
  echo "  place in the batch: CPU 129 → 112 ms for the endpoints, 114 → 106 ms for decoding in"
  echo "  place (\`perf stat\` task-clock, medians of interleaved runs)."
  echo "- Fat LTO and one codegen unit: 164.7 M → 159.2 M instructions; CPU 136 → 129 ms."
  echo "- Handshake percentiles from a histogram bounded by the largest sample, not by an hour"
  echo "  (same buckets and figures; 3.4 M instructions of zeroing and scanning at report time)."
  echo
  echo "Page-cache folios. How the capture sits in the page cache moved exflow's time more than"
  echo "most code changes. Written by the synthesizer, it sits in small folios and \`cat\` took"
  echo "0.05 s to copy it out; dropped and read back from disk (8 MiB read-ahead, ext4 large"
  echo "folios) it sits in 2 MiB folios and the same copy took 0.02–0.03 s. This machine pages"
  echo "cold memory out (\`kdamond\`, DAMON's pageout scheme) and what is read back mid-run comes"
  echo "back in smaller pieces, so the cost of the copy, which exflow's reading thread pays and"
  echo "the other tools hide behind their own work, drifted by half over a run: the \"fast\" and"
  echo "\"slow phases\" earlier runs of this script saw (0.081 and 0.102 s for the same code)."
  echo "Hence the same starting state for every tool and every run."
  echo
  echo "Tried and dropped (no measurable win):"
  echo
  echo "- Memory-mapping the file. With the capture in small folios, walking the records of the"
  echo "  mapping took 108–137 ms against 57–80 ms to \`read()\` it. In 2 MiB folios a populated"
  echo "  mapping costs 5–12 ms and a walk that prefetches ahead ~20 ms, against ~30 ms to read"
  echo "  and walk (C walker): 5–10 ms of the reading thread, for unsafe code and a process that a"
  echo "  file truncated under it kills with SIGBUS. Not taken."
  echo "- A third thread reading the file ahead in 1 MiB chunks, records framed in place in them:"
  echo "  0.14 s against 0.12 s (more CPU: the headers then come from the other core's cache)."
  echo "- pcap-parser buffer of 128 KiB, 512 KiB or 1 MiB instead of 256 KiB: within noise."
  echo "- Batches of 256 or 4,096 packets instead of 1,024, and entries padded by 80 bytes (to"
  echo "  see whether the hand-over's memory traffic counts): all within noise."
  echo "- The copy fingerprint on the reading thread, always or only while the queue was full;"
  echo "  a pass over each batch for copies before the flow updates; copy filters of 1,024 or"
  echo "  2,048 slots; no finalizer on the fingerprint: within noise."
  echo "- Spinning up to 200 µs on a full or empty queue before sleeping: futex calls per run"
  echo "  1,934 → 338 (\`strace -c\`), wall 77.7 → 87.2 ms (median of 12 interleaved): slower."
  echo "- Pinning the two threads to separate CPUs: within noise."
  echo
  echo "What bounds it: the kernel's copy of the file (\`cat\` above) runs on the reading thread"
  echo "beside framing and decoding (~45–50 ms of CPU in all); the tracking thread needs ~45 ms"
  echo "and the writing thread ~8 ms; start-up (loading libpcap and its libraries, the site"
  echo "file) and the report take ~3 ms each. On this virtual machine the wall time also swings"
  echo "by tens of milliseconds from one run to the next (every tool's max above), more than"
  echo "any one of the changes listed."
  echo
  echo "## Commands"
  echo
  echo '```sh'
  echo "benches/compare.sh   # RUNS=$RUNS PACKETS=$PACKETS FLOOD=$FLOOD RECORDS=$RECORDS SEED=$SEED FLOOD_TIMEOUT=$FLOOD_TIMEOUT SETTLE=$SETTLE"
  echo "cargo run --release --example synth -- --packets $PACKETS --seed $SEED --out F --truth F.truth.json --site S"
  echo "cargo run --release --example synth -- --flood $FLOOD --seed $SEED --out FLOOD"
  for name in "${TOOLS[@]}"; do
    echo "${CMD[$name]}" | sed -e "s#$WORK/site.pcap#F#g" -e "s#$WORK/site.toml#S#g" \
      -e "s#$WORK/nfpcapd#DIR#g" -e "s#$WORK/#/tmp/#g" -e "s#$ROOT/target/release/##g"
  done
  echo "timeout $FLOOD_TIMEOUT exflow analyze FLOOD --format json"
  for name in "${RTOOLS[@]}"; do
    echo "${RCMD[$name]}" | sed -e "s#$WORK/#/tmp/#g" -e "s#$ROOT/target/release/##g"
  done
  echo "# /tmp/states.awk:"
  sed 's/^/#   /' "$WORK/states.awk"
  echo "# /tmp/flows.jq: $(cat "$WORK/flows.jq")"
  echo '```'
  echo
  echo "Each timed command runs under \`/usr/bin/time -f %M timeout $TOOL_TIMEOUT\` (peak RSS) with"
  echo "standard output to /dev/null; wall time is taken around it with bash's \`\$EPOCHREALTIME\`."
} >"$OUT"
cat "$OUT"
