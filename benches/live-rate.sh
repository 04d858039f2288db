#!/usr/bin/env bash
# The packet rate `exflow live` sustains on a veth without dropping, and what it drops above it.
#
#   sudo benches/live-rate.sh                       # about 4 minutes on a 2-core machine
#   sudo RATES="100000 200000 top" PACKETS=500000 benches/live-rate.sh
#
# Root is required (network namespaces); tcpreplay is installed with apt-get if missing.
#
# The lab (documentation addresses only, no routes beyond the link, forwarding off, IPv6 off):
#
#   exrate-a: exrate-va 192.0.2.1/24  ---veth---  192.0.2.2/24 exrate-vb :exrate-b
#             tcpreplay SAMPLE ->                 <- exflow live -i exrate-vb --format json
#
# The sample's frames are replayed as they are: the script first checks that every IPv4
# address in them (and in ARP) is a documentation address and refuses any other traffic
# (IPv6 included). Their destination MACs are not exrate-vb's, so exrate-b's stack discards
# them right after the capture tap; nothing is forwarded or answered.
#
# For each mode (libpcap's default block mode, then --immediate) and each rate of the ladder:
#   1. exflow live starts in exrate-b (bounded by --duration) and the script waits until it
#      says it is capturing;
#   2. tcpreplay sends min(PACKETS, rate x MAX_SECONDS) packets at --pps RATE (`top`:
#      PACKETS at --topspeed), bounded by --duration MAX_SECONDS+1 and by timeout(1); a rate
#      above PPS_PER_SENDER is split over two tcpreplays, `top` uses TOP_SENDERS of them;
#   3. after DRAIN seconds exflow gets one SIGTERM and prints its final JSON report.
# Recorded: what tcpreplay says it sent (offered rate = packets / the longest sender's time),
# what exflow counted (capture.packets), its drop counters (capture.kernel_drops, the capture
# ring was full; interface_drops; queue_drops, its capture-to-analyzer queue was full), the
# packets missing (sent - counted), drops before the tap (veth and the host's backlog), and
# the report's warnings. The result is a Markdown report on stdout (progress on stderr).
#
# Environment:
#   RATES          the ladder, packets per second or `top`, doubling so that the rate twice the
#                  highest clean one is tried (12500 25000 50000 100000 200000 400000 800000 top)
#   PACKETS        most packets per step (2000000)
#   MAX_SECONDS    most seconds of sending per step (10)
#   SAMPLE         the capture replayed, Ethernet, classic pcap (samples/healthy-mix.pcap)
#   MODES          `default` (libpcap's block mode) and/or `immediate` (both: default immediate)
#   PPS_PER_SENDER above it a rate is split over two tcpreplays (450000)
#   TOP_SENDERS    tcpreplays at --topspeed for `top` (2)
#   DRAIN          seconds between the end of sending and the SIGTERM (2)
#   EXFLOW         the binary (target/release/exflow; built with cargo if missing)
#   EXFLOW_REV     what the binary was built from, for the report (the work tree's git describe)
#   EXFLOW_ARGS    more options for exflow live, e.g. "--buffer-size 8" (none)
#   OUT            also write the report to this file (none)
#   KEEP=1         keep the work directory (JSON reports, tcpreplay output)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

RATES=${RATES:-12500 25000 50000 100000 200000 400000 800000 top}
PACKETS=${PACKETS:-2000000}
MAX_SECONDS=${MAX_SECONDS:-10}
SAMPLE=${SAMPLE:-samples/healthy-mix.pcap}
MODES=${MODES:-default immediate}
PPS_PER_SENDER=${PPS_PER_SENDER:-450000}
TOP_SENDERS=${TOP_SENDERS:-2}
DRAIN=${DRAIN:-2}
EXFLOW=${EXFLOW:-target/release/exflow}
EXFLOW_ARGS=${EXFLOW_ARGS:-}
OUT=${OUT:-}
KEEP=${KEEP:-0}

NS_TX=exrate-a # the sender's namespace
NS_RX=exrate-b # exflow's namespace
IF_TX=exrate-va
IF_RX=exrate-vb
ADDR_TX=192.0.2.1/24
ADDR_RX=192.0.2.2/24

say() { printf '== %s\n' "$*" >&2; }
die() {
  printf 'live-rate.sh: %s\n' "$*" >&2
  exit 2
}

# --- checks -----------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (network namespaces)"
for v in PACKETS MAX_SECONDS PPS_PER_SENDER TOP_SENDERS DRAIN; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
[ "$TOP_SENDERS" -le 4 ] || die "TOP_SENDERS: at most 4"
for r in $RATES; do
  [[ $r == top || $r =~ ^[1-9][0-9]*$ ]] || die "RATES: '$r' is neither a number nor 'top'"
done
for m in $MODES; do
  [[ $m == default || $m == immediate ]] || die "MODES: '$m' is neither 'default' nor 'immediate'"
done
[ -f "$SAMPLE" ] || die "no sample $SAMPLE"
command -v ip >/dev/null || die "ip (iproute2) missing"
command -v python3 >/dev/null || die "python3 missing"
if ! command -v tcpreplay >/dev/null; then
  say "installing tcpreplay"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpreplay >/dev/null
fi
if [ ! -x "$EXFLOW" ]; then
  [ "$EXFLOW" = target/release/exflow ] || die "no exflow binary at $EXFLOW"
  say "building exflow (cargo build --release)"
  cargo build --release --quiet
fi
EXFLOW=$(realpath "$EXFLOW")
SAMPLE=$(realpath "$SAMPLE")

# Refuse a sample with anything but documentation IPv4 addresses; print its frame count.
SAMPLE_FRAMES=$(
  python3 - "$SAMPLE" <<'PY'
import ipaddress, struct, sys
DOC = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
def doc(b):
    return any(ipaddress.ip_address(b) in n for n in DOC)
data = open(sys.argv[1], "rb").read()
magic = data[:4]
if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
    e = "<"
elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
    e = ">"
else:
    sys.exit("not a classic pcap file (pcapng? convert it with editcap -F pcap)")
if struct.unpack(e + "I", data[20:24])[0] != 1:
    sys.exit("link type is not Ethernet")
off, n = 24, 0
while off + 16 <= len(data):
    incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
    f = data[off + 16:off + 16 + incl]
    off += 16 + incl
    n += 1
    p, et = 14, struct.unpack(">H", f[12:14])[0] if len(f) >= 14 else None
    while et in (0x8100, 0x88A8) and len(f) >= p + 4:
        et = struct.unpack(">H", f[p + 2:p + 4])[0]
        p += 4
    if et == 0x0800 and len(f) >= p + 20:
        addrs = [f[p + 12:p + 16], f[p + 16:p + 20]]
    elif et == 0x0806 and len(f) >= p + 28:
        addrs = [f[p + 14:p + 18], f[p + 24:p + 28]]
    else:
        sys.exit(f"frame {n}: ethertype {et!r} is not IPv4 or ARP: refused")
    for a in addrs:
        if not doc(a):
            sys.exit(f"frame {n}: {ipaddress.ip_address(a)} is not a documentation address: refused")
if n == 0:
    sys.exit("no frames")
print(n)
PY
) || die "sample $SAMPLE refused"

# --- lab and teardown -------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/exflow-live-rate.XXXXXX)
PIDS=()    # every exflow and tcpreplay started (ended by their id at exit)
CREATED=() # the namespaces this run made
any_alive() { # pid...
  local pid
  for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}
cleanup() {
  local rc=$? pid ns
  trap - EXIT INT TERM
  # SIGTERM first (timeout(1) passes it on to its tcpreplay), SIGKILL what is left after 3 s.
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do
    any_alive "${PIDS[@]}" || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for ns in "${CREATED[@]}"; do ip netns del "$ns" 2>/dev/null || true; done # veth goes too
  if [ "$KEEP" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CMDS=$WORK/commands.txt # every command that shapes the measurement, for the report
log() { printf '%s\n' "$*" >>"$CMDS"; }
run() { # log a command and run it (not for background jobs: $! would be a subshell's)
  log "$@"
  "$@"
}

for ns in "$NS_TX" "$NS_RX"; do
  [ ! -e "/run/netns/$ns" ] || die "namespace $ns exists (another run? remove it with: ip netns del $ns)"
done
say "lab: $NS_TX/$IF_TX $ADDR_TX <-> $NS_RX/$IF_RX $ADDR_RX"
for ns in "$NS_TX" "$NS_RX"; do
  run ip netns add "$ns"
  CREATED+=("$ns")
  # No IPv6 (no neighbour discovery or MLD in the capture), no forwarding.
  run ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.ip_forward=0
  run ip -n "$ns" link set lo up
done
run ip link add "$IF_TX" netns "$NS_TX" type veth peer name "$IF_RX" netns "$NS_RX"
run ip -n "$NS_TX" addr add "$ADDR_TX" dev "$IF_TX"
run ip -n "$NS_RX" addr add "$ADDR_RX" dev "$IF_RX"
run ip -n "$NS_TX" link set "$IF_TX" up
run ip -n "$NS_RX" link set "$IF_RX" up
echo >>"$CMDS"

# Packets dropped before the capture tap: the veth's own counters and the host's backlog drops.
pre_tap_drops() {
  local a b s
  a=$(ip netns exec "$NS_TX" cat "/sys/class/net/$IF_TX/statistics/tx_dropped")
  b=$(ip netns exec "$NS_RX" cat "/sys/class/net/$IF_RX/statistics/rx_dropped")
  s=0
  while read -r _ hex _; do s=$((s + 16#$hex)); done </proc/net/softnet_stat # column 2: dropped
  echo $((a + b + s))
}

# --- one step ---------------------------------------------------------------------------------
RESULTS=$WORK/results.tsv
: >"$RESULTS"
STEP=0
step() { # mode rate
  local mode=$1 rate=$2 senders total per loops i pid rc ready pre post
  local -a mode_args=() rate_args=() extra_args=() tx_pids=() tcmd=()
  STEP=$((STEP + 1))
  local json=$WORK/step$STEP.json err=$WORK/step$STEP.err
  [ "$mode" = immediate ] && mode_args=(--immediate)
  read -r -a extra_args <<<"$EXFLOW_ARGS"
  if [ "$rate" = top ]; then
    senders=$TOP_SENDERS
    total=$PACKETS
  else
    senders=1
    [ "$rate" -gt "$PPS_PER_SENDER" ] && senders=2
    total=$((rate * MAX_SECONDS))
    [ "$total" -gt "$PACKETS" ] && total=$PACKETS
  fi
  per=$((total / senders))
  total=$((per * senders))
  loops=$((per / SAMPLE_FRAMES + 2))
  say "step $STEP: $mode, $rate pps, $total packets, $senders sender(s)"
  printf '# step %d: %s mode, %s pps\n' "$STEP" "$mode" "$rate" >>"$CMDS"

  # exflow: its own --duration bounds it should the SIGTERM never come.
  local -a xcmd=(ip netns exec "$NS_RX" "$EXFLOW" live -i "$IF_RX" --format json --interval 0
    --duration "$((MAX_SECONDS * 3 + 60))s" "${mode_args[@]}" "${extra_args[@]}")
  log "${xcmd[@]}" "&"
  "${xcmd[@]}" >"$json" 2>"$err" & # ip execs exflow: $! is exflow's pid
  local xpid=$!
  PIDS+=("$xpid")
  ready=0
  for _ in $(seq 100); do # up to 10 s
    if grep -q 'capturing on' "$err"; then ready=1 && break; fi
    kill -0 "$xpid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ready" != 1 ]; then
    cat "$err" >&2
    die "exflow did not start capturing"
  fi
  [ "$(readlink "/proc/$xpid/exe")" = "$EXFLOW" ] || die "pid $xpid is not exflow"
  sleep 0.5
  pre=$(pre_tap_drops)

  for ((i = 1; i <= senders; i++)); do
    if [ "$rate" = top ]; then rate_args=(--topspeed); else rate_args=(--pps "$((rate / senders))"); fi
    tcmd=(timeout "$((MAX_SECONDS * 2 + 10))" ip netns exec "$NS_TX" tcpreplay -K -i "$IF_TX"
      "${rate_args[@]}" --limit "$per" --loop "$loops" --duration "$((MAX_SECONDS + 1))" "$SAMPLE")
    log "${tcmd[@]}" "&"
    "${tcmd[@]}" >"$WORK/step$STEP.tx$i" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    tx_pids+=("$pid")
  done
  for pid in "${tx_pids[@]}"; do
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || say "tcpreplay exited $rc (its output is in the notes)"
  done
  PIDS=("$xpid") # the senders are reaped: their ids are no longer ours
  sleep "$DRAIN"
  post=$(pre_tap_drops)

  # One SIGTERM only: a second one makes exflow exit at once, without its report.
  printf 'kill -TERM <exflow> (after %s s)\n\n' "$DRAIN" >>"$CMDS"
  kill -TERM "$xpid"
  for _ in $(seq 300); do # up to 30 s for the final report
    kill -0 "$xpid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$xpid" 2>/dev/null; then
    kill -KILL "$xpid" 2>/dev/null || true
    say "exflow did not stop within 30 s of SIGTERM: killed"
  fi
  rc=0
  wait "$xpid" || rc=$?
  PIDS=() # all waited for: none left to end

  python3 - "$mode" "$rate" "$senders" "$json" "$rc" "$((post - pre))" "$WORK/step$STEP".tx* >>"$RESULTS" <<'PY'
import json, re, sys
mode, rate, senders, path, rc, pretap = sys.argv[1:7]
sent, secs, notes = 0, 0.0, []
for tx in sys.argv[7:]:
    text = open(tx).read()
    m = re.search(r"Actual: (\d+) packets \(\d+ bytes\) sent in ([\d.]+) seconds", text)
    if not m:
        notes.append("tcpreplay: " + " ".join(text.split())[:200])
        continue
    sent += int(m.group(1))
    secs = max(secs, float(m.group(2)))
offered = round(sent / secs) if secs else 0
try:
    rep = json.load(open(path))
    cap = rep["capture"]
    counted = cap["packets"]
    kernel, iface, queue = cap["kernel_drops"], cap["interface_drops"], cap["queue_drops"]
    for w in rep.get("warnings", []):
        notes.append(w if isinstance(w, str) else json.dumps(w, sort_keys=True))
except (OSError, ValueError, KeyError) as e:
    counted = kernel = iface = queue = -1
    notes.append(f"no report (exit {rc}): {e}")
if rc != "0":
    notes.append(f"exflow exited {rc}")
missing = sent - counted if counted >= 0 else sent
extra = max(0, -missing)
missing = max(0, missing)
if extra:
    notes.append(f"{extra} packets counted beyond those sent")
lost = 100.0 * missing / sent if sent else 0.0
note = "; ".join(n.replace("|", "/").replace("\t", " ") for n in notes)
print("\t".join(str(x) for x in (mode, rate, senders, sent, f"{secs:.2f}", offered, counted,
                                  kernel, iface, queue, pretap, missing, f"{lost:.3f}", note)))
PY
  tail -n 1 "$RESULTS" | cut -f 1-13 | tr '\t' ' ' | sed 's/^/   /' >&2
}

# --- the ladder -------------------------------------------------------------------------------
START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for mode in $MODES; do
  for rate in $RATES; do
    step "$mode" "$rate"
  done
done
ELAPSED=$(($(date +%s) - START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report -------------------------------------------------------------------------------
report() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  cat <<EOF
# exflow live: sustained packet rate on a veth

Measured $(date -u +'%Y-%m-%d %H:%M UTC') by \`benches/live-rate.sh\` in ${ELAPSED} s.

- Machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r); load average before $LOAD_BEFORE, after $LOAD_AFTER (other work on the machine skews the figures)
- exflow: binary $EXFLOW (${EXFLOW_REV:-work tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}) built $(date -u -r "$EXFLOW" +'%Y-%m-%d %H:%M UTC'), $(ldd "$EXFLOW" | awk '/libpcap/ { print $1; exit }')
- $(tcpreplay --version 2>&1 | head -n 1); net.core.netdev_max_backlog $(sysctl -n net.core.netdev_max_backlog)
- Sample: $(basename "$SAMPLE") ($SAMPLE_FRAMES frames, $(stat -c %s "$SAMPLE") bytes), looped; per step min($PACKETS packets, rate x $MAX_SECONDS s); \`top\` = $TOP_SENDERS tcpreplays at --topspeed, rates above $PPS_PER_SENDER pps split over 2
- exflow live options: --format json --interval 0 ${EXFLOW_ARGS:-(default buffer)}; mode \`immediate\` adds --immediate

EOF
  python3 - "$RESULTS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("| mode | target pps | senders | sent | seconds | offered pps | counted | kernel drops "
      "| interface drops | queue drops | pre-tap drops | missing | lost % | notes |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    fmt = [r[0], r[1]] + [f"{int(x):,}" if x.lstrip("-").isdigit() else x for x in r[2:13]] + [r[13]]
    print("| " + " | ".join(fmt) + " |")
print()
print("Kernel drops: the capture ring was full. Interface drops: as libpcap reports them. "
      "Queue drops: exflow's capture-to-analyzer queue was full. Pre-tap drops: the veth's "
      "tx/rx drops and the host's backlog drops during the step (before the capture). "
      "Missing: sent - counted.")
print()
print("## Summary")
print()
for mode in dict.fromkeys(r[0] for r in rows):
    steps = sorted((r for r in rows if r[0] == mode), key=lambda r: int(r[5]))
    def clean(r):
        return int(r[6]) >= 0 and all(int(r[i]) == 0 for i in (7, 8, 9, 10, 11))
    def drops(r):
        return (f"{int(r[11]):,} of {int(r[3]):,} missing ({float(r[12]):.3f} %): kernel "
                f"{int(r[7]):,}, interface {int(r[8]):,}, queue {int(r[9]):,}, pre-tap {int(r[10]):,}")
    top = max(steps, key=lambda r: int(r[5]))
    first_bad = next((i for i, r in enumerate(steps) if not clean(r)), None)
    good = steps[:first_bad] if first_bad is not None else steps
    if not good:
        print(f"- **{mode}**: drops at every rate tried; the lowest, {int(steps[0][5]):,} pps: {drops(steps[0])}.")
        continue
    best = good[-1]
    rate = int(best[5])
    line = f"- **{mode}**: highest rate with zero drops {rate:,} pps offered (target {best[1]})."
    later_clean = [r for r in steps[len(good):] if clean(r)]
    if later_clean:
        line += (" (Also clean at " + ", ".join(f"{int(r[5]):,}" for r in later_clean)
                 + " pps, above a lossy step: the threshold is noisy.)")
    twice = [r for r in steps if int(r[5]) >= 1.9 * rate]
    if twice:
        r = twice[0]
        line += f" At {int(r[5]):,} pps offered (target {r[1]}, about twice): {drops(r) if not clean(r) else 'no drops either'}."
    else:
        line += (f" Twice that rate could not be generated: the highest offered was "
                 f"{int(top[5]):,} pps (target {top[1]}), " + ("with no drops: the limit found is the sender's, "
                    "on the cores it shares with exflow." if clean(top) else f"with {drops(top)}."))
    print(line)
PY
  printf '\n## Commands\n\n```sh\n'
  cat "$CMDS"
  printf '```\n'
}
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
