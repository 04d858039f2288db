#!/usr/bin/env bash
# make-samples.sh: capture real traffic between real servers and real clients through a
# forwarding firewall in network namespaces, and write small pcaps with their expected
# per-connection results next to this script.
#
#   sudo samples/make-samples.sh            # all scenarios (about 20 seconds)
#   sudo samples/make-samples.sh rst-refused cut-midstream    # only these
#
# Topology (documentation addresses only; no default routes, so nothing can leave the lab):
#
#   exf-client                  exf-fw (ip_forward=1, nftables)            exf-server
#   203.0.113.10/24 [exf-c0]---[exf-fwc] 203.0.113.1    198.51.100.1 [exf-fws]---[exf-s0] 198.51.100.10/24
#                                  ^ tcpdump here                                      198.51.100.53/24
#
# Servers in exf-server: nginx (80, 443 with a throw-away self-signed certificate), two
# Python smtpd DebuggingServers (25 and 587) and dnsmasq (UDP 53 on 198.51.100.53).
# Clients in exf-client: curl, swaks, dig. Each scenario builds the namespaces afresh,
# loads its firewall rules, captures on the firewall's client-side interface, checks every
# client's exit code and writes <name>.pcap and <name>.expect.jsonl; the expect lines are
# written next to the steps that cause them. Then check-capture.py compares the capture
# with the expect lines and the script fails loudly on any difference.
#
# Needs root. Installs what is missing with apt-get. Tears everything down on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE
PFX=exf
NS_C=$PFX-client NS_F=$PFX-fw NS_S=$PFX-server
IF_C=$PFX-c0 IF_FC=$PFX-fwc IF_FS=$PFX-fws IF_S=$PFX-s0
CLIENT=203.0.113.10 FW_C=203.0.113.1 FW_S=198.51.100.1
SERVER=198.51.100.10 DNS=198.51.100.53
ALL_SCENARIOS=(healthy-mix syn-dropped rst-refused icmp-prohibited cut-midstream)

say() { printf '== %s\n' "$*" >&2; }
die() {
    printf 'make-samples.sh: FAILED: %s\n' "$*" >&2
    if [ -n "${LOG:-}" ] && [ -s "$LOG" ]; then
        printf -- '--- last lines of %s ---\n' "$LOG" >&2
        tail -n 30 "$LOG" >&2 || true
    fi
    exit 1
}

[ "$(id -u)" -eq 0 ] || { echo "make-samples.sh: must be run as root (sudo $0)" >&2; exit 2; }

# --------------------------------------------------------------------------- packages
need_pkgs=()
want() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); }
want ip iproute2
want nft nftables
want tcpdump tcpdump
want ethtool ethtool
want nginx nginx
want dnsmasq dnsmasq-base
want swaks swaks
want dig bind9-dnsutils
want curl curl
want openssl openssl
want jq jq
want timeout coreutils
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# The SMTP server: Python's smtpd module (in the standard library up to 3.11, Debian 12's
# python3); where it is gone, Debian's aiosmtpd package.
PY=/usr/bin/python3
if "$PY" -W ignore -c 'import smtpd' 2>/dev/null; then
    SMTPD=(smtpd)
else
    if ! "$PY" -c 'import aiosmtpd' 2>/dev/null; then
        say "installing python3-aiosmtpd"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-aiosmtpd >/dev/null
    fi
    SMTPD=(aiosmtpd)
fi

# --------------------------------------------------------------------------- arguments
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=("${ALL_SCENARIOS[@]}")
for s in "${SCENARIOS[@]}"; do
    case " ${ALL_SCENARIOS[*]} " in *" $s "*) ;; *) echo "unknown scenario: $s (known: ${ALL_SCENARIOS[*]})" >&2; exit 2 ;; esac
done

# --------------------------------------------------------------------------- work dir, teardown
WORK=$(mktemp -d /tmp/exf-samples.XXXXXX)
chmod 755 "$WORK"
LOG=$WORK/lab.log
: >"$LOG"
SERVER_PIDS=()
TCPDUMP_PID=

lab_down() {
    local pid ns
    if [ -n "$TCPDUMP_PID" ]; then
        kill -INT "$TCPDUMP_PID" 2>/dev/null || true
        wait "$TCPDUMP_PID" 2>/dev/null || true
        TCPDUMP_PID=
    fi
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
    # Anything still running inside our namespaces was started by this script (nginx workers).
    for ns in "$NS_C" "$NS_F" "$NS_S"; do
        if ip netns list 2>/dev/null | grep -qw "^$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -KILL "$pid" 2>/dev/null || true
            done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    lab_down
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --------------------------------------------------------------------------- server files
mkdir -p "$WORK/www/autodiscover" "$WORK/www/ews" "$WORK/www/owa" "$WORK/tls" "$WORK/nginx-tmp"
printf '<html><body>exflow sample server</body></html>\n' >"$WORK/www/index.html"
printf '<?xml version="1.0"?><Autodiscover/>\n' >"$WORK/www/autodiscover/autodiscover.xml"
printf '<wsdl/>\n' >"$WORK/www/ews/exchange.asmx"
printf '<html>owa</html>\n' >"$WORK/www/owa/index.html"
BIG_BYTES=300000
yes 'exflow sample payload: an offline address book that is far too big for this firewall' \
    | head -c "$BIG_BYTES" >"$WORK/www/oab.bin" || true
[ "$(stat -c %s "$WORK/www/oab.bin")" -eq "$BIG_BYTES" ] || die "could not write oab.bin"
chmod -R a+rX "$WORK/www"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=mail.example.test" \
    -addext "subjectAltName=DNS:mail.example.test,IP:$SERVER" \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >>"$LOG" 2>&1 || die "openssl req"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log info;
events { worker_connections 64; }
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $WORK/nginx-tmp/body;
    proxy_temp_path $WORK/nginx-tmp/proxy;
    fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
    scgi_temp_path $WORK/nginx-tmp/scgi;
    default_type application/octet-stream;
    keepalive_timeout 30s;
    server {
        listen $SERVER:80;
        root $WORK/www;
    }
    server {
        listen $SERVER:443 ssl;
        ssl_certificate $WORK/tls/cert.pem;
        ssl_certificate_key $WORK/tls/key.pem;
        root $WORK/www;
    }
}
EOF

# --------------------------------------------------------------------------- lab
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Wait (bounded) until something listens on PROTO PORT in the server namespace.
wait_listen() {
    local proto=$1 port=$2 i
    for i in $(seq 1 50); do
        if [ -n "$(nsx "$NS_S" ss -Hln"${proto:0:1}" "sport = :$port" 2>/dev/null)" ]; then
            return 0
        fi
        sleep 0.1
    done
    die "nothing listens on $proto/$port in $NS_S"
}

# Background jobs are started with `ip netns exec` directly (it execs the program), never
# through a shell function: `func &` would fork a subshell, and $! would name that subshell,
# which ignores SIGINT, instead of the program.
start_server() { # name cmd...
    local name=$1; shift
    ip netns exec "$NS_S" "$@" >>"$WORK/$name.log" 2>&1 &
    SERVER_PIDS+=($!)
}

lab_up() {
    lab_down
    local ns dev
    for ns in "$NS_C" "$NS_F" "$NS_S"; do
        ip netns add "$ns"
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        nsx "$ns" ip link set lo up
    done
    nsx "$NS_F" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$NS_F" link add "$IF_FC" type veth peer name "$IF_C" netns "$NS_C"
    ip -n "$NS_F" link add "$IF_FS" type veth peer name "$IF_S" netns "$NS_S"
    for pair in "$NS_C:$IF_C" "$NS_F:$IF_FC" "$NS_F:$IF_FS" "$NS_S:$IF_S"; do
        ns=${pair%%:*} dev=${pair#*:}
        nsx "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
        # Software checksums and MTU-sized segments, as on a real wire: with veth offloads
        # on, tcpdump would record bad checksums and 64 KB "packets".
        nsx "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>>"$LOG" || true
        nsx "$ns" ethtool -k "$dev" | grep -q '^tx-checksumming: off' || die "tx checksum offload still on for $dev"
        nsx "$ns" ip link set "$dev" up
    done
    nsx "$NS_C" ip addr add "$CLIENT/24" dev "$IF_C"
    nsx "$NS_F" ip addr add "$FW_C/24" dev "$IF_FC"
    nsx "$NS_F" ip addr add "$FW_S/24" dev "$IF_FS"
    nsx "$NS_S" ip addr add "$SERVER/24" dev "$IF_S"
    nsx "$NS_S" ip addr add "$DNS/24" dev "$IF_S"
    nsx "$NS_C" ip route add 198.51.100.0/24 via "$FW_C"
    nsx "$NS_S" ip route add 203.0.113.0/24 via "$FW_S"

    start_server nginx nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -g 'daemon off;'
    local port
    for port in 25 587; do
        if [ "${SMTPD[0]}" = smtpd ]; then
            start_server "smtp$port" "$PY" -u -W ignore -m smtpd -n -c DebuggingServer "$SERVER:$port"
        else
            start_server "smtp$port" "$PY" -u -m aiosmtpd -n -l "$SERVER:$port" -c aiosmtpd.handlers.Debugging
        fi
    done
    start_server dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --no-poll --bind-interfaces --listen-address="$DNS" --port=53 --user=root --pid-file= \
        --address=/autodiscover.example.test/"$SERVER" --address=/mail.example.test/"$SERVER" \
        --log-queries --log-facility=-
    wait_listen tcp 80; wait_listen tcp 443; wait_listen tcp 25; wait_listen tcp 587; wait_listen udp 53
}

# Firewall: everything the healthy site needs is allowed; SCENARIO_RULES come first.
firewall() { # scenario rules (nft lines), may be empty
    cat >"$WORK/fw.nft" <<EOF
flush ruleset
table ip exf {
    chain forward {
        type filter hook forward priority filter; policy drop;
$1
        ct state established,related accept
        iifname "$IF_FC" ip daddr $SERVER tcp dport { 25, 80, 443, 587 } ct state new accept
        iifname "$IF_FC" ip daddr $DNS udp dport 53 accept
    }
}
EOF
    nsx "$NS_F" nft -f "$WORK/fw.nft" || die "nft -f fw.nft"
    # ct byte counters (cut-midstream) need conntrack accounting; set it for every scenario.
    nsx "$NS_F" sysctl -qw net.netfilter.nf_conntrack_acct=1
    printf '%s\n' "--- firewall rules:" >>"$LOG"
    nsx "$NS_F" nft list ruleset >>"$LOG"
}

capture_start() { # name
    CAP=$WORK/$1.pcap
    EXPECT=$WORK/$1.expect.jsonl
    : >"$EXPECT"
    ip netns exec "$NS_F" tcpdump -i "$IF_FC" -w "$CAP" -U -n -Z root 'tcp or udp or icmp' 2>"$WORK/tcpdump.log" &
    TCPDUMP_PID=$!
    local i
    for i in $(seq 1 50); do
        grep -q 'listening on' "$WORK/tcpdump.log" && return 0
        sleep 0.1
    done
    die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"
}

capture_stop() { # name
    sleep 2   # let FIN/ACK exchanges and late retransmissions land in the capture
    kill -INT "$TCPDUMP_PID"
    local i
    for i in $(seq 1 50); do   # tcpdump flushes and exits on SIGINT; wait for it, bounded
        kill -0 "$TCPDUMP_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$TCPDUMP_PID" 2>/dev/null && die "tcpdump did not stop on SIGINT"
    wait "$TCPDUMP_PID" || true
    TCPDUMP_PID=
    cat "$WORK/tcpdump.log" >>"$LOG"
    "$PY" "$HERE/check-capture.py" "$CAP" "$EXPECT" || die "$1: the capture does not match its expectations"
    mv -f "$CAP" "$OUT/$1.pcap"
    mv -f "$EXPECT" "$OUT/$1.expect.jsonl"
    chmod 644 "$OUT/$1.pcap" "$OUT/$1.expect.jsonl"
}

# Run a client in exf-client under `timeout`; its exit code must be WANT.
client() { # want seconds cmd...
    local want=$1 secs=$2 rc=0
    shift 2
    printf '%s\n' "--- client (want exit $want): $*" >>"$LOG"
    nsx "$NS_C" timeout -k 2 "$secs" "$@" >>"$LOG" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || die "client '$*' exited $rc, the scenario expects $want"
    CLIENT_RC=$rc
}

# One expect line. expect PROTO RESP_H RESP_P CONN_STATE WHY [JSON object with more keys]
expect() {
    local more='{}'
    [ $# -lt 6 ] || more=$6
    jq -cn --arg proto "$1" --arg oh "$CLIENT" --arg rh "$2" --argjson rp "$3" --arg st "$4" \
        --arg why "$5" --argjson more "$more" \
        '{proto: $proto, "id.orig_h": $oh, "id.resp_h": $rh, "id.resp_p": $rp, conn_state: $st}
         + $more + {why: $why}' >>"$EXPECT"
}

# --------------------------------------------------------------------------- derived facts
sysctl_in() { nsx "$1" sysctl -n "$2" 2>/dev/null || echo "$3"; }

# Number of SYN retransmissions Linux sends before DEADLINE seconds (minus a margin),
# from the client namespace's settings: initial RTO 1 s, the first tcp_syn_linear_timeouts
# retransmissions 1 s apart (Linux >= 6.5; absent = 0), then doubling, tcp_syn_retries at most.
syn_retries_within() { # deadline_seconds margin_seconds
    local deadline=$1 margin=$2 linear retries k=0 t=0 rto=1
    linear=$(sysctl_in "$NS_C" net.ipv4.tcp_syn_linear_timeouts 0)
    retries=$(sysctl_in "$NS_C" net.ipv4.tcp_syn_retries 6)
    awk -v d="$deadline" -v m="$margin" -v lin="$linear" -v max="$retries" 'BEGIN {
        t = 0; n = 0
        for (k = 1; k <= max; k++) {
            rto = (k <= lin + 1) ? 1 : 2 ^ (k - 1 - lin)
            t += rto
            if (t < d - m) n++
        }
        print n }'
}

CURL=(curl -sS -o /dev/null --noproxy '*')
SWAKS=(swaks --from alice@example.net --to bob@example.test --helo client.example.net
       --header 'Subject: exflow sample' --body 'hello from the exflow lab' --timeout 10)
HTTPS_OK_WHY="curl -k https://$SERVER/owa/ exit 0; allowed by 'tcp dport { 25, 80, 443, 587 } ct state new accept'"

# --------------------------------------------------------------------------- scenarios
scenario_healthy_mix() {
    local n=healthy-mix out
    lab_up
    firewall ""
    capture_start "$n"

    out=$(nsx "$NS_C" timeout 10 dig +tries=1 +time=3 +short @"$DNS" autodiscover.example.test A 2>>"$LOG") \
        || die "dig failed"
    [ "$out" = "$SERVER" ] || die "dig answered '$out', expected $SERVER"
    expect udp "$DNS" 53 SF "dig @$DNS autodiscover.example.test A exit 0, answer $SERVER; allowed by 'udp dport 53 accept'"

    client 0 20 "${CURL[@]}" -k "https://$SERVER/autodiscover/autodiscover.xml" "https://$SERVER/ews/exchange.asmx"
    expect tcp "$SERVER" 443 SF "curl -k (one connection, two requests: autodiscover.xml, exchange.asmx) exit 0; allowed by 'tcp dport { 25, 80, 443, 587 }'"
    client 0 20 "${CURL[@]}" -k "https://$SERVER/owa/"
    expect tcp "$SERVER" 443 SF "curl -k https://$SERVER/owa/ exit 0; allowed"
    client 0 20 "${CURL[@]}" -k --tls-max 1.2 "https://$SERVER/ews/exchange.asmx"
    expect tcp "$SERVER" 443 SF "curl -k --tls-max 1.2 https://$SERVER/ews/exchange.asmx exit 0; allowed"
    client 0 20 "${CURL[@]}" "http://$SERVER/"
    expect tcp "$SERVER" 80 SF "curl http://$SERVER/ exit 0; allowed"
    client 0 20 "${SWAKS[@]}" --server "$SERVER" --port 25
    expect tcp "$SERVER" 25 SF "swaks --port 25 (EHLO, MAIL, RCPT, DATA, QUIT) exit 0; allowed"
    client 0 20 "${SWAKS[@]}" --server "$SERVER" --port 587
    expect tcp "$SERVER" 587 SF "swaks --port 587 (EHLO, MAIL, RCPT, DATA, QUIT) exit 0; allowed"

    capture_stop "$n"
}

scenario_syn_dropped() {
    local n=syn-dropped ct=5 retries
    lab_up
    firewall "        ip daddr $SERVER tcp dport 25 drop"
    capture_start "$n"

    retries=$(syn_retries_within "$ct" 0.5)
    # curl exit 28: operation timed out (the connect never completed).
    client 28 20 "${CURL[@]}" --connect-timeout "$ct" "smtp://$SERVER:25/"
    expect tcp "$SERVER" 25 S0 "curl --connect-timeout $ct smtp://$SERVER:25/ exit $CLIENT_RC (timeout); SYNs silently dropped by 'tcp dport 25 drop'; retransmitted SYNs keep the ISN so history stays S" \
        "{\"history\":\"S\",\"min_syn_retries\":$retries,\"client_exit\":$CLIENT_RC}"
    client 0 20 "${CURL[@]}" -k "https://$SERVER/owa/"
    expect tcp "$SERVER" 443 SF "$HTTPS_OK_WHY"

    capture_stop "$n"
}

scenario_rst_refused() {
    local n=rst-refused fw_ttl srv_ttl
    lab_up
    firewall "        ip daddr $SERVER tcp dport 25 reject with tcp reset"
    capture_start "$n"

    # The firewall makes the RST itself (spoofed from $SERVER:25) and sends it straight out of
    # the interface we capture on: its TTL is the firewall's default. The server's own packets
    # left the server with its default TTL and were forwarded once by the firewall (-1).
    fw_ttl=$(sysctl_in "$NS_F" net.ipv4.ip_default_ttl 64)
    srv_ttl=$(( $(sysctl_in "$NS_S" net.ipv4.ip_default_ttl 64) - 1 ))
    # curl exit 7: couldn't connect (ECONNREFUSED).
    client 7 20 "${CURL[@]}" --connect-timeout 5 "smtp://$SERVER:25/"
    expect tcp "$SERVER" 25 REJ "curl smtp://$SERVER:25/ exit $CLIENT_RC (connection refused); the firewall's 'tcp dport 25 reject with tcp reset' answers the SYN with RST+ACK claiming to be $SERVER; RST TTL $fw_ttl (made by the firewall) vs $srv_ttl on the server's real packets" \
        "{\"history\":\"Sr\",\"rst_from\":\"resp\",\"rst_ttl\":$fw_ttl,\"server_ttl\":$srv_ttl,\"client_exit\":$CLIENT_RC}"
    client 0 20 "${CURL[@]}" -k "https://$SERVER/owa/"
    expect tcp "$SERVER" 443 SF "$HTTPS_OK_WHY"

    capture_stop "$n"
}

scenario_icmp_prohibited() {
    local n=icmp-prohibited
    lab_up
    firewall "        ip daddr $SERVER tcp dport 25 reject with icmp type admin-prohibited"
    capture_start "$n"

    # Linux treats any ICMP destination-unreachable for a socket in SYN_SENT as fatal
    # (tcp_v4_err: code 13 maps to EHOSTUNREACH) and aborts the connect at once: one SYN, no
    # retransmission; curl exit 7 "couldn't connect" (No route to host).
    client 7 20 "${CURL[@]}" --connect-timeout 5 "smtp://$SERVER:25/"
    expect tcp "$SERVER" 25 S0 "curl smtp://$SERVER:25/ exit $CLIENT_RC (No route to host); 'tcp dport 25 reject with icmp type admin-prohibited' answers the SYN with ICMP 3/13 from the firewall ($FW_C); the client kernel aborts the connect on it, so there is a single SYN" \
        "{\"history\":\"S\",\"icmp\":{\"type\":3,\"code\":13},\"min_syn_retries\":0,\"client_exit\":$CLIENT_RC}"
    client 0 20 "${CURL[@]}" -k "https://$SERVER/owa/"
    expect tcp "$SERVER" 443 SF "$HTTPS_OK_WHY"

    capture_stop "$n"
}

scenario_cut_midstream() {
    local n=cut-midstream limit=20000 fw_ttl srv_ttl
    lab_up
    # The rule matches the CLIENT's packets (its ACKs) once the server has sent more than
    # $limit bytes on the connection: `reject with tcp reset` drops that ACK and sends a RST to
    # its source, the client, spoofed from $SERVER:80. The server hears nothing (its ACKs and
    # the client's later RSTs are dropped by the same rule), so it keeps sending; the client's
    # kernel answers those late segments with RSTs, which are captured here on the way in.
    firewall "        ip saddr $CLIENT ip daddr $SERVER tcp dport 80 ct reply bytes > $limit reject with tcp reset"
    capture_start "$n"
    fw_ttl=$(sysctl_in "$NS_F" net.ipv4.ip_default_ttl 64)
    srv_ttl=$(( $(sysctl_in "$NS_S" net.ipv4.ip_default_ttl 64) - 1 ))

    client 0 20 "${CURL[@]}" "http://$SERVER/"
    expect tcp "$SERVER" 80 SF "curl http://$SERVER/ exit 0: the small page stays far below the ${limit}-byte rule"
    # curl exit 56: "Recv failure: Connection reset by peer".
    client 56 20 "${CURL[@]}" "http://$SERVER/oab.bin"
    expect tcp "$SERVER" 80 RSTR "curl http://$SERVER/oab.bin ($BIG_BYTES bytes) exit $CLIENT_RC (connection reset); 'ct reply bytes > $limit reject with tcp reset' on the client's packets sends the client a RST claiming to be $SERVER once the server has sent $limit bytes; the responder side RESET first, so RSTR (the client's own RSTs to the server's late segments follow)" \
        "{\"rst_from\":\"resp\",\"rst_ttl\":$fw_ttl,\"server_ttl\":$srv_ttl,\"client_exit\":$CLIENT_RC}"

    capture_stop "$n"
}

# --------------------------------------------------------------------------- main
start=$(date +%s)
for s in "${SCENARIOS[@]}"; do
    say "$s"
    "scenario_${s//-/_}"
done
lab_down
say "done in $(( $(date +%s) - start ))s: ${SCENARIOS[*]} -> $OUT"
