#!/usr/bin/env bash
# make-samples.sh: capture real traffic between real servers and real clients through a
# forwarding firewall in network namespaces, and write small pcaps with their expected
# per-connection results next to this script; for the Exchange-site captures also a site file
# and the report exflow must give for it.
#
#   sudo samples/make-samples.sh            # all scenarios (about seven minutes)
#   sudo samples/make-samples.sh rst-refused cut-midstream    # only these
#   sudo ONLY_FW2=1 samples/make-samples.sh syn-dropped        # only their dumpcap (.fw2) files
#
# Topology (documentation addresses only; no default routes, so nothing can leave the lab):
#
#   exf-client                  exf-fw (ip_forward=1, nftables)            exf-server
#   203.0.113.10/24 [exf-c0]---[exf-fwc] 203.0.113.1    198.51.100.1 [exf-fws]---[exf-s0] 198.51.100.10/24
#   (site lab: also .25 MTA,       ^ tcpdump here        192.0.2.129 [exf-fwp]    (classic lab: also .53 DNS)
#    .53 resolver, .66 scanner)                                           |
#                                                                  [exf-e0] 192.0.2.130/26  exf-edge
#                                                                  (edge scenario only)
#   IPv6 scenario: 2001:db8:113::/64 on the client leg, 2001:db8:200::/64 on the server leg, no IPv4.
#
# The classic lab (the first five captures): nginx (80, 443 with a throw-away self-signed
# certificate), two Python smtpd DebuggingServers (25 and 587) and dnsmasq (UDP 53 on
# 198.51.100.53) in exf-server; clients curl, swaks, dig in exf-client.
# The site lab (the captures with a .site.toml): the server is an Exchange mailbox server
# (nginx 80/443, SMTP 25/587, dovecot POP3/IMAP where a scenario needs it); the client
# namespace is the internet: the clients, an internet MTA (203.0.113.25) and the DNS resolver
# the mailbox uses (203.0.113.53); the edge scenario adds a perimeter leg with an Edge server.
# Each scenario builds the namespaces afresh, loads its firewall rules, captures on one
# firewall interface, checks every client's exit code and writes <name>.pcap and
# <name>.expect.jsonl (and <name>.site.toml, <name>.expect-report.json); the expectations are
# written next to the steps that cause them. Then check-capture.py compares the capture with
# the expect lines and the script fails loudly on any difference.
# Beside every scenario's capture, dumpcap captures the firewall's legs at once (<name>.fw2.pcapng,
# unsorted as dumpcap writes it) with the same expected report plus where each failed flow died
# (<name>.fw2.expect-died-at.json). Issue 14's scenarios add a NATed dual-stack site, drops by the
# mailbox's own host firewall, VXLAN and ERSPAN mirror feeds to a sensor namespace, and
# BPF-filtered outage captures without a site file (see README.md). Issue 15's scenarios put
# Postfix on the mailbox and make what the firewall does to the payload: an ESMTP-inspection
# fixture (Cisco ASA inspect esmtp's defaults), SMTP refusals, a short conntrack timeout on 443
# killing long polls (dropped or reset), TLS reset by server name (an iptables string match),
# Exchange's virtual directories on 80, dovecot's IMAP and POP3 with STARTTLS (mail-starttls);
# their truth is <name>.expect-findings.json.
#
# Needs root. Installs what is missing with apt-get. Tears everything down on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE
PFX=exf
NS_C=$PFX-client NS_F=$PFX-fw NS_S=$PFX-server NS_E=$PFX-edge
IF_C=$PFX-c0 IF_FC=$PFX-fwc IF_FS=$PFX-fws IF_S=$PFX-s0 IF_FP=$PFX-fwp IF_E=$PFX-e0
CLIENT=203.0.113.10 FW_C=203.0.113.1 FW_S=198.51.100.1
SERVER=198.51.100.10 DNS=198.51.100.53
# The site lab: internet hosts in exf-client besides the client, the Edge's perimeter leg, IPv6.
INET_MTA=203.0.113.25 RESOLVER=203.0.113.53 SCANNER=203.0.113.66
INTERNAL_NET=198.51.100.0/24
EDGE=192.0.2.130 FW_P=192.0.2.129 PERIMETER_NET=192.0.2.128/26
CLIENT6=2001:db8:113::10 FW_C6=2001:db8:113::1 INET_MTA6=2001:db8:113::25 RESOLVER6=2001:db8:113::53
SERVER6=2001:db8:200::10 FW_S6=2001:db8:200::1 INTERNAL_NET6=2001:db8:200::/64 INTERNET_NET6=2001:db8:113::/64
CLASSIC_SCENARIOS=(healthy-mix syn-dropped rst-refused icmp-prohibited cut-midstream)
SITE_SCENARIOS=(exchange-healthy inbound-25-dropped https-icmp-rejected submission-refused
                pop-imap-disabled edge-edgesync-blocked cut-midstream-site ipv6-site
                scan-beside-traffic two-interfaces one-direction)
# Issue 14's captures: NAT and dual stack, drops beyond the firewall, tunnelled mirror feeds,
# BPF-filtered outage captures without a site file.
NEW_SCENARIOS=(nat-dual-stack beyond-firewall tunnel-mirror outage-587-refused outage-25-dropped)
# Issue 15's captures: what the firewall did to the payload (ESMTP inspection, SMTP refusals,
# idle-timeout kills, TLS filtered by server name, Exchange's virtual directories on 80), with
# Postfix as the mailbox's SMTP server; each with <name>.expect-findings.json.
PAYLOAD_SCENARIOS=(esmtp-inspection smtp-refusals idle-timeout-drop idle-timeout-reset tls-by-name
                   payload-healthy tls-handshake-failed mail-starttls)
# Of these, the ones also captured with dumpcap on the firewall's legs (<name>.fw2.*, with the
# run's findings truth as <name>.fw2.expect-findings.json): the payload look must see through the
# reorder buffer and the copy pairing of an unsorted two-interface capture.
PAYLOAD_FW2=(esmtp-inspection idle-timeout-drop idle-timeout-reset tls-by-name payload-healthy)
ALL_SCENARIOS=("${CLASSIC_SCENARIOS[@]}" "${SITE_SCENARIOS[@]}" "${NEW_SCENARIOS[@]}" "${PAYLOAD_SCENARIOS[@]}")
# The NATed site's public address (on the firewall's outside leg) and the mirror sensor's
# underlay (a /30 of its own between the firewall and the sensor namespace).
NAT_PUBLIC=203.0.113.80
NS_M=$PFX-sensor IF_FU=$PFX-fwu IF_M=$PFX-m0 IF_VX=$PFX-vx
FW_U=192.0.2.249 SENSOR=192.0.2.250
# ONLY_FW2=1: keep the single-interface captures already in samples/ (the snapshot tests pin
# them) and move only the new two-interface (dumpcap) files of the scenarios run.
ONLY_FW2=${ONLY_FW2:-0}

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
want nmap nmap
want dumpcap wireshark-common      # the firewall's own multi-interface capture; reordercap, editcap
want reordercap wireshark-common
want tshark tshark                 # checks the tunnelled mirror feeds and the dumpcap files' order
want dovecot dovecot-core
[ -x /usr/lib/dovecot/pop3 ] || need_pkgs+=(dovecot-pop3d)
[ -x /usr/lib/dovecot/imap ] || need_pkgs+=(dovecot-imapd)
perl -MIO::Socket::INET6 -e 1 2>/dev/null || need_pkgs+=(libio-socket-inet6-perl)   # swaks over IPv6
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
want postfix postfix               # the mailbox's SMTP server in issue 15's scenarios
want conntrack conntrack           # checks the idle-timeout scenarios' ct timeout is applied
want iptables iptables             # tls-by-name: the string match on the ClientHello
perl -MIO::Socket::SSL -e 1 2>/dev/null || need_pkgs+=(libio-socket-ssl-perl libnet-ssleay-perl)   # swaks --tls
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
DUMPCAP_PID=

lab_down() {
    local pid ns
    if [ -n "$TCPDUMP_PID" ]; then
        kill -INT "$TCPDUMP_PID" 2>/dev/null || true
        wait "$TCPDUMP_PID" 2>/dev/null || true
        TCPDUMP_PID=
    fi
    if [ -n "$DUMPCAP_PID" ]; then
        kill -INT "$DUMPCAP_PID" 2>/dev/null || true
        wait "$DUMPCAP_PID" 2>/dev/null || true
        DUMPCAP_PID=
    fi
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
    # Anything still running inside our namespaces was started by this script (nginx workers,
    # dovecot's children).
    for ns in "$NS_C" "$NS_F" "$NS_S" "$NS_E" "$NS_M"; do
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
    -addext "subjectAltName=DNS:mail.example.test,DNS:autodiscover.example.test,DNS:edge.example.test,IP:$SERVER,IP:$SERVER6,IP:$EDGE" \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" >>"$LOG" 2>&1 || die "openssl req"
chmod 644 "$WORK/tls/key.pem"
# nginx.conf for one or more server addresses (IPv6 in brackets).
nginx_conf() { # listen-host...
    local h l80= l443=
    for h in "$@"; do
        l80+="        listen $h:80;"$'\n'
        l443+="        listen $h:443 ssl;"$'\n'
    done
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
$l80        root $WORK/www;
$NGINX_EXTRA80    }
    server {
$l443        ssl_certificate $WORK/tls/cert.pem;
        ssl_certificate_key $WORK/tls/key.pem;
        root $WORK/www;
$NGINX_EXTRA443    }
}
EOF
}

# The site lab's SMTP server (any address family): a sink that logs each message, or, given a
# next hop, a relay (the Edge) that hands each message on before it answers DATA, so that the
# sending client's exit code also says whether the relay worked.
cat >"$WORK/smtp-server.py" <<'EOF'
import sys
import smtplib
import warnings

warnings.simplefilter("ignore")
HOST, PORT = sys.argv[1], int(sys.argv[2])
RELAY = (sys.argv[3], int(sys.argv[4]), sys.argv[5]) if len(sys.argv) > 5 else None


def handle(peer, mailfrom, rcpttos, data):
    print(f"message from {peer}: {mailfrom} -> {rcpttos}, {len(data)} bytes", flush=True)
    if RELAY is None:
        return None
    hop, port, source = RELAY
    try:
        with smtplib.SMTP(hop, port, local_hostname="edge.example.test", timeout=10,
                          source_address=(source, 0)) as s:
            s.sendmail(mailfrom, rcpttos, data)
    except (OSError, smtplib.SMTPException) as e:
        print(f"relay to {hop}:{port} failed: {e!r}", flush=True)
        return "451 4.4.1 next hop failed"
    print(f"relayed to {hop}:{port} from {source}", flush=True)
    return None


try:
    import asyncore
    import smtpd
except ImportError:  # Python >= 3.12: Debian's python3-aiosmtpd
    smtpd = None

if smtpd is not None:
    class Server(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
            return handle(peer[0], mailfrom, rcpttos, data)

    Server((HOST, PORT), None, decode_data=False)
    asyncore.loop()
else:
    import asyncio
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            reply = handle(session.peer[0], envelope.mail_from, envelope.rcpt_tos, envelope.content)
            return reply or "250 OK"

    async def main():
        srv = await asyncio.get_running_loop().create_server(lambda: SMTP(Handler()), HOST, PORT)
        await srv.serve_forever()

    asyncio.run(main())
EOF

# POP3 / IMAP4 client: log in, read the mailbox, log out; exit 0 only if it read the one
# message the lab put there.
cat >"$WORK/mail-client.py" <<'EOF'
import imaplib
import poplib
import sys

proto, host, user, password = sys.argv[1:5]
if proto == "pop3":
    p = poplib.POP3(host, 110, timeout=10)
    p.user(user)
    p.pass_(password)
    count, _size = p.stat()
    for i in range(1, count + 1):
        p.retr(i)
    p.quit()
elif proto == "imap4":
    m = imaplib.IMAP4(host, 143, timeout=10)
    m.login(user, password)
    _typ, data = m.select("INBOX", readonly=True)
    count = int(data[0])
    if count:
        m.fetch("1:*", "(RFC822)")
    m.logout()
else:
    sys.exit(f"unknown protocol {proto}")
print(f"{proto}: {count} message(s) read")
sys.exit(0 if count == 1 else 3)
EOF

# --------------------------------------------------------------------------- lab
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Wait (bounded) until something listens on PROTO PORT in a namespace (default: the server's).
wait_listen() { # proto port [ns]
    local proto=$1 port=$2 ns=${3:-$NS_S} i
    for i in $(seq 1 50); do
        if [ -n "$(nsx "$ns" ss -Hln"${proto:0:1}" "sport = :$port" 2>/dev/null)" ]; then
            return 0
        fi
        sleep 0.1
    done
    die "nothing listens on $proto/$port in $ns"
}

# Background jobs are started with `ip netns exec` directly (it execs the program), never
# through a shell function: `func &` would fork a subshell, and $! would name that subshell,
# which ignores SIGINT, instead of the program.
start_in() { # ns name cmd...
    local ns=$1 name=$2; shift 2
    ip netns exec "$ns" "$@" >>"$WORK/$name.log" 2>&1 </dev/null &
    SERVER_PIDS+=($!)
}
start_server() { # name cmd...   (in the server namespace)
    local name=$1; shift
    start_in "$NS_S" "$name" "$@"
}

LAB_V6=0
# One veth pair, NS_A:IF_A <-> NS_B:IF_B, offloads off, up.
veth() { # ns_a if_a ns_b if_b
    local pair ns dev
    ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
    for pair in "$1:$2" "$3:$4"; do
        ns=${pair%%:*} dev=${pair#*:}
        if [ "$LAB_V6" -eq 1 ]; then
            # No duplicate address detection (addresses usable at once), no router
            # solicitations or advertisements: the only ICMPv6 left is neighbour discovery.
            nsx "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=0" "net.ipv6.conf.$dev.accept_dad=0" \
                "net.ipv6.conf.$dev.accept_ra=0" "net.ipv6.conf.$dev.router_solicitations=0"
        else
            nsx "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
        fi
        # Software checksums and MTU-sized segments, as on a real wire: with veth offloads
        # on, tcpdump would record bad checksums and 64 KB "packets".
        nsx "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>>"$LOG" || true
        nsx "$ns" ethtool -k "$dev" | grep -q '^tx-checksumming: off' || die "tx checksum offload still on for $dev"
        nsx "$ns" ip link set "$dev" up
    done
}

# lab_up            the classic lab of the first five captures
# lab_up site       the Exchange-site lab: mailbox server in exf-server, the internet (clients,
#                   an MTA, a DNS resolver) in exf-client
# lab_up site edge  ... plus a perimeter leg exf-fwp -- exf-edge with an Edge server
# lab_up site v6    ... over IPv6 only
# lab_up site payload  ... with Postfix as the mailbox's SMTP server (25, 587 with STARTTLS),
#                   Exchange's virtual directories on nginx's port 80 and an ActiveSync
#                   long-poll backend behind nginx's 443 (issue 15's scenarios)
lab_up() {
    lab_down
    local site=0 edge=0 dual=0 a ns nss
    LAB_V6=0 LAB_PAYLOAD=0 NGINX_EXTRA80= NGINX_EXTRA443=
    for a in "$@"; do
        case $a in site) site=1 ;; edge) edge=1 ;; v6) LAB_V6=1 ;; dual) dual=1 LAB_V6=1 ;;
            payload) LAB_PAYLOAD=1 NGINX_EXTRA80=$PAYLOAD_NGINX80 NGINX_EXTRA443=$PAYLOAD_NGINX443 ;;
            *) die "lab_up: unknown option $a" ;; esac
    done
    # The firewall's legs, for the two-interface (dumpcap) capture taken beside every scenario's.
    FW2_IFACES=("$IF_FC" "$IF_FS")
    [ "$edge" -eq 0 ] || FW2_IFACES+=("$IF_FP")
    FW2=1 CAP_NS=$NS_F FW2_REPORT_JQ=. FW2_SNAPLEN=
    nss=("$NS_C" "$NS_F" "$NS_S")
    [ "$edge" -eq 0 ] || nss+=("$NS_E")
    for ns in "${nss[@]}"; do
        ip netns add "$ns"
        if [ "$LAB_V6" -eq 1 ]; then
            nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
                net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
                net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
                net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0
        else
            nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        fi
        nsx "$ns" ip link set lo up
    done
    if [ "$LAB_V6" -eq 1 ]; then
        nsx "$NS_F" sysctl -qw net.ipv6.conf.all.forwarding=1
        [ "$dual" -eq 0 ] || nsx "$NS_F" sysctl -qw net.ipv4.ip_forward=1
        CAP_FILTER='tcp or udp or icmp or icmp6'
    else
        nsx "$NS_F" sysctl -qw net.ipv4.ip_forward=1
        CAP_FILTER='tcp or udp or icmp'
    fi
    veth "$NS_F" "$IF_FC" "$NS_C" "$IF_C"
    veth "$NS_F" "$IF_FS" "$NS_S" "$IF_S"
    [ "$edge" -eq 0 ] || veth "$NS_F" "$IF_FP" "$NS_E" "$IF_E"

    if [ "$site" -eq 0 ]; then
        classic_up
    elif [ "$LAB_V6" -eq 1 ] && [ "$dual" -eq 0 ]; then
        # The MTA's and the resolver's addresses are deprecated (preferred_lft 0): they still
        # answer, but source address selection never picks them for the client's connections.
        nsx "$NS_C" ip -6 addr add "$CLIENT6/64" dev "$IF_C" nodad
        nsx "$NS_C" ip -6 addr add "$INET_MTA6/64" dev "$IF_C" nodad preferred_lft 0
        nsx "$NS_C" ip -6 addr add "$RESOLVER6/64" dev "$IF_C" nodad preferred_lft 0
        nsx "$NS_F" ip -6 addr add "$FW_C6/64" dev "$IF_FC" nodad
        nsx "$NS_F" ip -6 addr add "$FW_S6/64" dev "$IF_FS" nodad
        nsx "$NS_S" ip -6 addr add "$SERVER6/64" dev "$IF_S" nodad
        nsx "$NS_C" ip -6 route add "$INTERNAL_NET6" via "$FW_C6"
        nsx "$NS_S" ip -6 route add "$INTERNET_NET6" via "$FW_S6"
        M_ADDR=$SERVER6 C_ADDR=$CLIENT6 MTA_ADDR=$INET_MTA6 RES_ADDR=$RESOLVER6 URL_HOST="[$SERVER6]"
        M_ADDRS=("$SERVER6")
        site_servers
    else
        nsx "$NS_C" ip addr add "$CLIENT/24" dev "$IF_C"
        nsx "$NS_C" ip addr add "$INET_MTA/24" dev "$IF_C"
        nsx "$NS_C" ip addr add "$RESOLVER/24" dev "$IF_C"
        nsx "$NS_F" ip addr add "$FW_C/24" dev "$IF_FC"
        nsx "$NS_F" ip addr add "$FW_S/24" dev "$IF_FS"
        nsx "$NS_S" ip addr add "$SERVER/24" dev "$IF_S"
        nsx "$NS_C" ip route add "$INTERNAL_NET" via "$FW_C"
        nsx "$NS_S" ip route add 203.0.113.0/24 via "$FW_S"
        M_ADDR=$SERVER C_ADDR=$CLIENT MTA_ADDR=$INET_MTA RES_ADDR=$RESOLVER URL_HOST=$SERVER
        M_ADDRS=("$SERVER")
        if [ "$dual" -eq 1 ]; then
            # Dual stack: the client and the mailbox also have IPv6 (one address each); the
            # internet MTA and the resolver stay IPv4-only.
            nsx "$NS_C" ip -6 addr add "$CLIENT6/64" dev "$IF_C" nodad
            nsx "$NS_F" ip -6 addr add "$FW_C6/64" dev "$IF_FC" nodad
            nsx "$NS_F" ip -6 addr add "$FW_S6/64" dev "$IF_FS" nodad
            nsx "$NS_S" ip -6 addr add "$SERVER6/64" dev "$IF_S" nodad
            nsx "$NS_C" ip -6 route add "$INTERNAL_NET6" via "$FW_C6"
            nsx "$NS_S" ip -6 route add "$INTERNET_NET6" via "$FW_S6"
            M_ADDRS+=("$SERVER6")
        fi
        if [ "$edge" -eq 1 ]; then
            nsx "$NS_F" ip addr add "$FW_P/26" dev "$IF_FP"
            nsx "$NS_E" ip addr add "$EDGE/26" dev "$IF_E"
            nsx "$NS_E" ip route add 203.0.113.0/24 via "$FW_P"
            nsx "$NS_E" ip route add "$INTERNAL_NET" via "$FW_P"
            nsx "$NS_C" ip route add "$PERIMETER_NET" via "$FW_C"
            nsx "$NS_S" ip route add "$PERIMETER_NET" via "$FW_S"
        fi
        site_servers
        [ "$edge" -eq 0 ] || edge_servers
    fi
}

classic_up() {
    nsx "$NS_C" ip addr add "$CLIENT/24" dev "$IF_C"
    nsx "$NS_F" ip addr add "$FW_C/24" dev "$IF_FC"
    nsx "$NS_F" ip addr add "$FW_S/24" dev "$IF_FS"
    nsx "$NS_S" ip addr add "$SERVER/24" dev "$IF_S"
    nsx "$NS_S" ip addr add "$DNS/24" dev "$IF_S"
    nsx "$NS_C" ip route add 198.51.100.0/24 via "$FW_C"
    nsx "$NS_S" ip route add 203.0.113.0/24 via "$FW_S"

    nginx_conf "$SERVER"
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

# The mailbox server (nginx, SMTP 25 and 587) and the internet's MTA and DNS resolver.
site_servers() {
    local port a listen=()
    for a in "${M_ADDRS[@]}"; do
        case $a in *:*) listen+=("[$a]") ;; *) listen+=("$a") ;; esac
    done
    nginx_conf "${listen[@]}"
    start_server nginx nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -g 'daemon off;'
    if [ "$LAB_PAYLOAD" -eq 1 ]; then
        postfix_up
        start_server longpoll "$PY" -u "$WORK/longpoll-backend.py" 127.0.0.1 "$LONGPOLL_PORT"
        wait_listen tcp "$LONGPOLL_PORT"
    else
        for port in 25 587; do
            for a in "${M_ADDRS[@]}"; do
                start_server "smtp$port" "$PY" -u "$WORK/smtp-server.py" "$a" "$port"
            done
        done
    fi
    start_in "$NS_C" inet-mta "$PY" -u "$WORK/smtp-server.py" "$MTA_ADDR" 25
    start_in "$NS_C" resolver dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --no-poll --bind-interfaces --listen-address="$RES_ADDR" --port=53 --user=root --pid-file= \
        --address=/mx.example.net/"$MTA_ADDR" --log-queries --log-facility=-
    wait_listen tcp 80; wait_listen tcp 443; wait_listen tcp 25; wait_listen tcp 587
    wait_listen tcp 25 "$NS_C"; wait_listen udp 53 "$NS_C"
}

# The Edge: an SMTP relay on 25 that hands every message to the mailbox server (from the
# Edge's address), and a TLS listener on 50636 standing in for EdgeSync's AD LDS.
edge_servers() {
    start_in "$NS_E" edge-smtp "$PY" -u "$WORK/smtp-server.py" "$EDGE" 25 "$SERVER" 25 "$EDGE"
    start_in "$NS_E" edgesync openssl s_server -accept "$EDGE:50636" -cert "$WORK/tls/cert.pem" \
        -key "$WORK/tls/key.pem" -www -quiet
    wait_listen tcp 25 "$NS_E"; wait_listen tcp 50636 "$NS_E"
}

# dovecot on the mailbox server: POP3 110 and IMAP 143, plain-text logins, one user with one
# message. (Debian's dovecot packages start a system-wide dovecot where systemd runs; this
# one is separate: its own configuration, run directory and log, inside exf-server.) With
# `tls`: the lab's self-signed certificate, STARTTLS (STLS) offered on 143 and 110, and IMAPS
# 993 and POP3S 995 too.
DOVECOT_USER=bob@example.test DOVECOT_PASS=lab-only-password
dovecot_up() { # [tls]
    local d=$WORK/dovecot ssl="ssl = no" imaps=0 pop3s=0
    if [ "${1:-}" = tls ]; then
        ssl="ssl = yes
ssl_cert = <$WORK/tls/cert.pem
ssl_key = <$WORK/tls/key.pem"
        imaps=993 pop3s=995
    fi
    mkdir -p "$d/run" "$d/state" "$d/mail/$DOVECOT_USER/Maildir/"{new,cur,tmp}
    printf 'From: alice@example.net\nTo: %s\nSubject: exflow sample\n\nhello from the exflow lab\n' \
        "$DOVECOT_USER" >"$d/mail/$DOVECOT_USER/Maildir/new/1.lab"
    chown -R dovecot:dovecot "$d/mail"
    printf '%s:{PLAIN}%s\n' "$DOVECOT_USER" "$DOVECOT_PASS" >"$d/users"
    chmod 644 "$d/users"
    cat >"$d/dovecot.conf" <<EOF
protocols = pop3 imap
listen = $M_ADDR
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
$ssl
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/users
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$d/mail/%u
}
service imap-login {
  inet_listener imaps {
    port = $imaps
  }
}
service pop3-login {
  inet_listener pop3s {
    port = $pop3s
  }
}
EOF
    start_server dovecot dovecot -F -c "$d/dovecot.conf"
    wait_listen tcp 110; wait_listen tcp 143
    [ "$imaps" -eq 0 ] || { wait_listen tcp 993; wait_listen tcp 995; }
}

# Firewall: everything the scenario's site needs is allowed; SCENARIO_RULES come first.
CLASSIC_ALLOW="        iifname \"$IF_FC\" ip daddr $SERVER tcp dport { 25, 80, 443, 587 } ct state new accept
        iifname \"$IF_FC\" ip daddr $DNS udp dport 53 accept"
# The site lab: the mailbox's client and inbound mail ports from the internet; the mailbox's
# outbound mail to any internet MTA and its DNS queries to its resolver.
SITE_ALLOW="        iifname \"$IF_FC\" ip daddr $SERVER tcp dport { 25, 80, 443, 587 } ct state new accept
        iifname \"$IF_FS\" ip saddr $SERVER tcp dport 25 ct state new accept
        iifname \"$IF_FS\" ip saddr $SERVER ip daddr $RESOLVER udp dport 53 accept"
SITE_ALLOW6="        iifname \"$IF_FC\" ip6 daddr $SERVER6 tcp dport { 25, 80, 443, 587 } ct state new accept
        iifname \"$IF_FS\" ip6 saddr $SERVER6 tcp dport 25 ct state new accept
        iifname \"$IF_FS\" ip6 saddr $SERVER6 ip6 daddr $RESOLVER6 udp dport 53 accept"
firewall() { # scenario rules (nft lines, may be empty) [allow rules [table family]]
    local allow=${2-$CLASSIC_ALLOW} family=${3:-ip}
    cat >"$WORK/fw.nft" <<EOF
flush ruleset
table $family exf {
${FW_OBJECTS-}    chain forward {
        type filter hook forward priority filter; policy drop;
$1
        ct state established,related accept
$allow
    }
}
EOF
    nsx "$NS_F" nft -f "$WORK/fw.nft" || die "nft -f fw.nft"
    # ct byte counters (cut-midstream) need conntrack accounting; set it for every scenario.
    nsx "$NS_F" sysctl -qw net.netfilter.nf_conntrack_acct=1
    printf '%s\n' "--- firewall rules:" >>"$LOG"
    nsx "$NS_F" nft list ruleset >>"$LOG"
}

# Capture in the firewall namespace (CAP_NS: another namespace, the mirror sensor): on the
# client-side interface unless told otherwise; further arguments go to tcpdump (-Q in,
# -y LINUX_SLL2). Beside it, unless FW2=0, dumpcap captures the same traffic on all the
# firewall's legs at once (FW2_IFACES), as a firewall engineer's Wireshark would: <name>.fw2.pcapng.
CAP_NS=$NS_F
FW2=1
capture_start() { # name [interface [tcpdump options...]]
    local name=$1 iface=${2:-$IF_FC} i
    shift
    [ $# -eq 0 ] || shift
    CAP=$WORK/$name.pcap
    EXPECT=$WORK/$name.expect.jsonl
    : >"$EXPECT"
    report_reset
    ip netns exec "$CAP_NS" tcpdump -i "$iface" "$@" -w "$CAP" -U -n -Z root "$CAP_FILTER" 2>"$WORK/tcpdump.log" &
    TCPDUMP_PID=$!
    for i in $(seq 1 50); do
        grep -qs 'listening on' "$WORK/tcpdump.log" && break
        sleep 0.1
    done
    grep -qs 'listening on' "$WORK/tcpdump.log" || die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"
    [ "$FW2" -eq 1 ] && fw2_start "$name"
    return 0
}

# dumpcap -i <leg> -i <leg> ...: one pcapng with an interface description block per leg, each
# packet tagged with the interface it was seen on; every forwarded packet appears once per leg
# it crossed. dumpcap reads each interface in its own thread and writes their packets as they
# come, so the file is not in time order; it is kept as written (fw2_order records it).
fw2_start() { # name
    local args=(-f "$CAP_FILTER") dev i
    [ -z "$FW2_SNAPLEN" ] || args+=(-s "$FW2_SNAPLEN")
    for dev in "${FW2_IFACES[@]}"; do args+=(-i "$dev"); done
    FW2_CAP=$WORK/$1.fw2.pcapng
    ip netns exec "$NS_F" dumpcap -n "${args[@]}" -w "$FW2_CAP" 2>"$WORK/dumpcap.log" &
    DUMPCAP_PID=$!
    for i in $(seq 1 50); do
        grep -qs '^Capturing on' "$WORK/dumpcap.log" && break
        sleep 0.1
    done
    grep -qs '^Capturing on' "$WORK/dumpcap.log" || die "dumpcap did not start: $(cat "$WORK/dumpcap.log")"
    sleep 0.5   # dumpcap's capture threads open their interfaces after the message
}

# Stop a capture process (SIGINT: it flushes and exits), bounded.
stop_capturer() { # pid what
    local i
    kill -INT "$1"
    for i in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null && die "$2 did not stop on SIGINT"
    wait "$1" || true
}
capture_halt() {
    sleep 2   # let FIN/ACK exchanges and late retransmissions land in the capture
    stop_capturer "$TCPDUMP_PID" tcpdump
    TCPDUMP_PID=
    cat "$WORK/tcpdump.log" >>"$LOG"
    if [ -n "$DUMPCAP_PID" ]; then
        stop_capturer "$DUMPCAP_PID" dumpcap
        DUMPCAP_PID=
        cat "$WORK/dumpcap.log" >>"$LOG"
    fi
}
capture_stop() { # name
    capture_halt
    capture_finish "$1"
}

# Check a capture in $WORK against its expect lines and move it into samples/ with its files.
capture_finish() { # name
    "$PY" "$HERE/check-capture.py" "$WORK/$1.pcap" "$WORK/$1.expect.jsonl" \
        || die "$1: the capture does not match its expectations"
    local files=("$1.pcap" "$1.expect.jsonl") f
    if [ -f "$WORK/$1.site.toml" ]; then
        "$PY" -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$WORK/$1.site.toml" \
            || die "$1.site.toml is not valid TOML"
        report_write "$1"
        files+=("$1.site.toml" "$1.expect-report.json")
    elif [ "$REPORT_NO_SITE" -eq 1 ]; then
        report_write "$1"
        files+=("$1.expect-report.json")
    fi
    if [ -f "$WORK/$1.fw2.pcapng" ]; then
        fw2_finish "$1"
        files+=("$1.fw2.pcapng" "$1.fw2.site.toml" "$1.fw2.expect-report.json" "$1.fw2.expect-died-at.json")
        [ "$ONLY_FW2" -eq 0 ] \
            || files=("$1.fw2.pcapng" "$1.fw2.site.toml" "$1.fw2.expect-report.json" "$1.fw2.expect-died-at.json")
    elif [ "$ONLY_FW2" -eq 1 ]; then
        files=()
    fi
    for f in ${files[@]+"${files[@]}"}; do
        mv -f "$WORK/$f" "$OUT/$f"
        chmod 644 "$OUT/$f"
    done
}

# Time order of a capture as written: steps back (a packet earlier than the one before it,
# reordercap's "out of order" count), packets behind (earlier than some packet already written)
# and the largest step back. reordercap's own line is kept beside them as a cross-check.
fw2_order() { # capture -> JSON
    local n
    n=$(reordercap -n "$1" "$WORK/sorted.pcapng" 2>&1 | tr -d '\n') || die "reordercap $1"
    rm -f "$WORK/sorted.pcapng"
    tshark -r "$1" -T fields -e frame.time_epoch 2>>"$LOG" | awk -v rc="$n" '
        NR > 1 && $1 < prev { steps++ }
        { if (NR == 1 || $1 >= top) top = $1; else { behind++; d = top - $1; if (d > max) max = d }
          prev = $1 }
        END { printf "{\"packets\":%d,\"steps_back\":%d,\"packets_behind\":%d,\"max_step_back_ms\":%.3f,\"reordercap\":\"%s\"}\n",
              NR, steps, behind, max * 1000, rc }'
}

# The two-interface capture's truth: the single-interface capture's expected report (the
# same traffic, the same verdicts; FW2_REPORT_JQ adjusts it where the view changes a verdict),
# with "duplicates": true, its time order, and died_at on every failed expected flow, from the
# died_at records the steps wrote (each names the rule that made it fail and where that rule is).
FW2_REPORT_JQ=.
fw2_finish() { # name
    local base=$WORK/$1.expect-report.json site=$WORK/$1.site.toml order count
    [ -f "$base" ] || base=$OUT/$1.expect-report.json     # the classic captures' hand-written ones
    [ -f "$site" ] || site=$OUT/$1.site.toml
    [ -f "$base" ] && [ -f "$site" ] || die "$1: no expected report or site file for the two-interface capture"
    count=$(capinfos -c -M "$WORK/$1.fw2.pcapng" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
    [ "${count:-0}" -gt 0 ] || die "$1.fw2.pcapng is empty"
    order=$(fw2_order "$WORK/$1.fw2.pcapng")
    say "$1.fw2.pcapng: $order"
    # Recorded either way; a file in time order would not exercise what it is kept for.
    [ "$(jq .steps_back <<<"$order")" -gt 0 ] || say "warning: $1.fw2.pcapng happens to be in time order this run"
    cp "$site" "$WORK/$1.fw2.site.toml"
    jq -s '.' "$DIED" >"$WORK/$1.fw2.expect-died-at.json" || die "$1: died_at records"
    jq --slurpfile died "$DIED" --argjson order "$order" --arg ifs "${FW2_IFACES[*]}" "$FW2_REPORT_JQ"' |
        .duplicates = true
        | .time_order = $order
        | .interfaces = ($ifs | split(" "))
        | .expected |= map(. as $e
            | ([$died[] | select(.role == $e.role and .src == $e.src and .dst == $e.dst)] | first) as $d
            | if $d != null then . + {died_at: $d.died_at}
              elif .verdict == "ok" or .verdict == "not_seen" then .
              else error("\($e.role) \($e.dst.address): verdict \($e.verdict) without a died_at record") end)' \
        "$base" >"$WORK/$1.fw2.expect-report.json" || die "$1: could not write the two-interface report"
    fw2_check_legs "$1"
}

# Where a failed expected flow died, for the two-interface view: "firewall" (a rule of the
# firewall dropped or answered it: the SYN entered on one leg and never left by the other) or
# "beyond_firewall" (it left the firewall toward the destination, whose host dropped or answered it).
# "legs" names the firewall interface the attempts enter by and the one they would leave by
# (default: in by the client-side leg, out by the server-side one).
died_at() { # role src dst port where why [in-leg out-leg]
    jq -cn --arg role "$1" --argjson src "$(side_json "$2")" --argjson dst "$(side_json "$3")" \
        --argjson port "$4" --arg where "$5" --arg why "$6" --arg in "${7:-$IF_FC}" --arg out "${8:-$IF_FS}" \
        '{role: $role, src: $src, dst: $dst, port: $port, died_at: $where, legs: {in: $in, out: $out},
          why: $why}' >>"$DIED"
}
# The classic captures' hand-written reports name the destination by its address only.
died_at_classic() { # role port where why
    jq -cn --arg role "$1" --arg dst "$SERVER" --argjson port "$2" --arg where "$3" --arg why "$4" \
        --arg in "$IF_FC" --arg out "$IF_FS" \
        '{role: $role, src: {zone: "internet", address: null}, dst: {address: $dst}, port: $port,
          died_at: $where, legs: {in: $in, out: $out}, why: $why}' >>"$DIED"
}

# Cross-check (not the source of the truth, which is the rule the script installed): in the
# dumpcap file, the failed attempts' SYNs entered by the in-leg, and left by the out-leg only
# where they died beyond the firewall. Cut connections (their SYNs passed) are not checked.
fw2_check_legs() { # name
    local f=$WORK/$1.fw2.pcapng port in out where dst match n_in n_out
    while read -r port in out where dst; do
        case $dst in *:*) match="ipv6.dst == $dst" ;; *) match="ip.dst == $dst" ;; esac
        match="!icmp && !icmpv6 && tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == $port && $match"
        n_in=$(tshark -r "$f" -Y "$match && frame.interface_name == \"$in\"" 2>>"$LOG" | wc -l)
        n_out=$(tshark -r "$f" -Y "$match && frame.interface_name == \"$out\"" 2>>"$LOG" | wc -l)
        say "$1.fw2.pcapng: port $port to $dst: $n_in SYNs in by $in, $n_out out by $out ($where)"
        [ "$n_in" -gt 0 ] || die "$1.fw2.pcapng: no SYN to $dst:$port entered by $in"
        case $where in
            firewall) [ "$n_out" -eq 0 ] || die "$1.fw2.pcapng: SYNs to $dst:$port left by $out, yet the firewall's rule should have stopped them" ;;
            beyond_firewall) [ "$n_out" -gt 0 ] || die "$1.fw2.pcapng: no SYN to $dst:$port left by $out, yet it should have died beyond the firewall" ;;
        esac
    done < <(jq -r --slurpfile r "$WORK/$1.fw2.expect-report.json" '.[] | . as $d
        | ([$r[0].expected[] | select(.role == $d.role and .src == $d.src and .dst == $d.dst) | .verdict] | first) as $v
        | select($v != "cut") | "\(.port) \(.legs.in) \(.legs.out) \(.died_at) \(.dst.address)"' \
        "$WORK/$1.fw2.expect-died-at.json")
}

# Run a client in a namespace under `timeout`; its exit code must be WANT.
run_in() { # ns want seconds cmd...
    local ns=$1 want=$2 secs=$3 rc=0
    shift 3
    printf '%s\n' "--- client in $ns (want exit $want): $*" >>"$LOG"
    nsx "$ns" timeout -k 2 "$secs" "$@" </dev/null >>"$LOG" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || die "client '$*' in $ns exited $rc, the scenario expects $want"
    CLIENT_RC=$rc
}
# Run a client in exf-client.
client() { # want seconds cmd...
    run_in "$NS_C" "$@"
}

# One expect line. expect_from ORIG_H PROTO RESP_H RESP_P CONN_STATE WHY [JSON object with more keys]
# EXPECT_ALL (a JSON object) is merged into every line of the scenario.
EXPECT_ALL='{}'
expect_from() {
    local more='{}'
    [ $# -lt 7 ] || more=$7
    jq -cn --arg proto "$2" --arg oh "$1" --arg rh "$3" --argjson rp "$4" --arg st "$5" \
        --arg why "$6" --argjson more "$more" --argjson all "$EXPECT_ALL" \
        '{proto: $proto, "id.orig_h": $oh, "id.resp_h": $rh, "id.resp_p": $rp, conn_state: $st}
         + $all + $more + {why: $why}' >>"$EXPECT"
}
# One expect line from the client. expect PROTO RESP_H RESP_P CONN_STATE WHY [MORE]
expect() {
    expect_from "$CLIENT" "$@"
}
# A line that claims every connection from ORIG_H to RESP_H on any of PORTS (a scan): each must
# fit it, and each port must have been tried. expect_many ORIG_H PROTO RESP_H PORTS CONN_STATE WHY [MORE]
expect_many() {
    local more='{}'
    [ $# -lt 7 ] || more=$7
    jq -cn --arg proto "$2" --arg oh "$1" --arg rh "$3" --arg ports "$4" --arg st "$5" \
        --arg why "$6" --argjson more "$more" \
        '{proto: $proto, "id.orig_h": $oh, "id.resp_h": $rh,
          "id.resp_p": ($ports | split(",") | map(tonumber)), conn_state: $st, many: true}
         + $more + {why: $why}' >>"$EXPECT"
}

# --------------------------------------------------------------------------- site file, expected report
# The site file is written from SITE_PROFILE, SITE_INTERNAL, SITE_PERIMETER, SITE_HOSTS
# ("role=address ...") and SITE_SERVICES (TOML lines); the report from the report_* calls made
# next to the client calls that cause them.
SITE_NAT=()   # "role=public-address ...": the [[host]]'s nat list (the NATed site)
SITE_INTERNAL=() SITE_PERIMETER=()
site_write() { # name comment
    local f=$WORK/$1.site.toml h nat
    {
        printf '# %s: %s\n' "$1" "$2"
        printf '# Written by make-samples.sh (Site file, version 1).\n'
        printf 'profile = "%s"\n' "$SITE_PROFILE"
        printf 'internal = [%s]\n' "$(toml_list "${SITE_INTERNAL[@]}")"
        printf 'perimeter = [%s]\n' "$(toml_list "${SITE_PERIMETER[@]}")"
        for h in "${SITE_HOSTS[@]}"; do
            printf '\n[[host]]\nrole = "%s"\naddresses = [%s]\n' "${h%%=*}" "$(toml_list ${h#*=})"
            for nat in "${SITE_NAT[@]}"; do
                [ "${nat%%=*}" != "${h%%=*}" ] || printf 'nat = [%s]\n' "$(toml_list ${nat#*=})"
            done
        done
        printf '\n[services]\n'
        for h in "${SITE_SERVICES[@]}"; do
            printf '%s\n' "$h"
        done
    } >"$f"
}
toml_list() { local a out=; for a in "$@"; do out+="${out:+, }\"$a\""; done; printf '%s' "$out"; }

# The v4 mailbox site every site scenario but the edge and IPv6 ones uses.
site_mailbox_v4() {
    SITE_PROFILE=mailbox SITE_INTERNAL=("$INTERNAL_NET") SITE_PERIMETER=()
    SITE_HOSTS=("mailbox=$SERVER" "dns=$RESOLVER") SITE_SERVICES=() SITE_NAT=()
}

# Zone of an address under the scenario's site: perimeter, internal or internet.
zone_of() { # address
    "$PY" -c '
import ipaddress, sys
a = ipaddress.ip_address(sys.argv[1])
def within(nets):
    return any(a.version == n.version and a in n for n in map(ipaddress.ip_network, nets.split()))
print("perimeter" if within(sys.argv[2]) else "internal" if within(sys.argv[3]) else "internet")
' "$1" "${SITE_PERIMETER[*]}" "${SITE_INTERNAL[*]}"
}
# One side of an expected flow: internet | client | ROLE=ADDRESS (a host of the site) |
# ROLE=ADDRESS@PUBLIC (a NATed host reached by, or seen as, its public address: "via").
side_json() {
    local a via
    case $1 in
        internet) printf '{"zone":"internet","role":null,"address":null}' ;;
        client) printf '{"zone":"internal","role":"client","address":null}' ;;
        internal) printf '{"zone":"internal","role":null,"address":null}' ;;
        *=*@*) a=${1#*=} via=${1#*@}; a=${a%@*}
               jq -cn --arg z "$(zone_of "$a")" --arg r "${1%%=*}" --arg a "$a" --arg via "$via" \
                 '{zone: $z, role: $r, address: $a, via: $via}' ;;
        *=*) jq -cn --arg z "$(zone_of "${1#*=}")" --arg r "${1%%=*}" --arg a "${1#*=}" \
                 '{zone: $z, role: $r, address: $a}' ;;
        *) die "side_json: $1" ;;
    esac
}
report_reset() {
    REPORT_E=$WORK/report-expected.jsonl REPORT_U=$WORK/report-unexpected.jsonl REPORT_S=$WORK/report-scans.jsonl
    DIED=$WORK/died-at.jsonl
    : >"$REPORT_E"; : >"$REPORT_U"; : >"$REPORT_S"; : >"$DIED"
    REPORT_DUPLICATES=false
    # A capture without a site file (the outage captures) still gets an expected report when
    # this is 1; REPORT_EXTRA (a JSON object) is merged into the report.
    REPORT_NO_SITE=0 REPORT_EXTRA='{}'
}
# An expected flow (catalogue role x source x destination) and the verdict the step implies.
STEP_NOTE=   # appended to every report_expected reason while set
report_expected() { # role src dst verdict why
    jq -cn --arg role "$1" --argjson src "$(side_json "$2")" --argjson dst "$(side_json "$3")" \
        --arg v "$4" --arg why "$5$STEP_NOTE" '{role: $role, src: $src, dst: $dst, verdict: $v, why: $why}' >>"$REPORT_E"
}
# Traffic no enabled role explains.
report_unexpected() { # proto port src dst reason why
    jq -cn --arg proto "$1" --argjson port "$2" --arg src "$3" --arg dst "$4" --arg reason "$5" --arg why "$6" \
        '{proto: $proto, port: $port, src: $src, dst: $dst, reason: $reason, why: $why}' >>"$REPORT_U"
}
report_scan() { # source why
    jq -cn --arg s "$1" --arg why "$2" '{source: $s, why: $why}' >>"$REPORT_S"
}
# Several steps may name the same flow (two 443 connections): one entry, one verdict, the
# reasons joined. Two different verdicts for one flow is a bug in the scenario.
report_write() { # name
    jq -n --slurpfile e "$REPORT_E" --slurpfile u "$REPORT_U" --slurpfile s "$REPORT_S" \
        --argjson dup "$REPORT_DUPLICATES" --argjson extra "$REPORT_EXTRA" '
        def merge(k): reduce .[] as $x ({}; ($x | k | tojson) as $key
            | if .[$key] == null then .[$key] = $x
              elif .[$key].verdict != $x.verdict then error("two verdicts for \($key)")
              else .[$key].why += "; " + $x.why end) | [.[]];
        {expected: ($e | merge([.role, .src, .dst])),
         unexpected: ($u | merge([.proto, .port, .dst, .reason])),
         unsupported_restrictions: [],
         scans: $s,
         duplicates: $dup} + $extra' >"$WORK/$1.expect-report.json" || die "$1: could not write the expected report"
}

# --------------------------------------------------------------------------- derived facts
sysctl_in() { nsx "$1" sysctl -n "$2" 2>/dev/null || echo "$3"; }

# Number of SYN retransmissions Linux sends before DEADLINE seconds (minus a margin),
# from a namespace's settings (the client's unless told): initial RTO 1 s, the first
# tcp_syn_linear_timeouts retransmissions 1 s apart (Linux >= 6.5; absent = 0), then doubling,
# tcp_syn_retries at most. (IPv6 TCP uses the same net.ipv4.tcp_* settings.)
syn_retries_within() { # deadline_seconds margin_seconds [namespace]
    local deadline=$1 margin=$2 ns=${3:-$NS_C} linear retries
    linear=$(sysctl_in "$ns" net.ipv4.tcp_syn_linear_timeouts 0)
    retries=$(sysctl_in "$ns" net.ipv4.tcp_syn_retries 6)
    awk -v d="$deadline" -v m="$margin" -v lin="$linear" -v max="$retries" 'BEGIN {
        t = 0; n = 0
        for (k = 1; k <= max; k++) {
            rto = (k <= lin + 1) ? 1 : 2 ^ (k - 1 - lin)
            t += rto
            if (t < d - m) n++
        }
        print n }'
}
# TTL of packets the firewall makes itself (RSTs) and of the server's packets after one hop.
fw_ttl() { sysctl_in "$NS_F" net.ipv4.ip_default_ttl 64; }
srv_ttl() { echo $(( $(sysctl_in "$NS_S" net.ipv4.ip_default_ttl 64) - 1 )); }

CURL=(curl -sS -o /dev/null --noproxy '*')
SWAKS=(swaks --from alice@example.net --to bob@example.test --helo client.example.net
       --header 'Subject: exflow sample' --body 'hello from the exflow lab' --timeout 10)
HTTPS_OK_WHY="curl -k https://$SERVER/owa/ exit 0; allowed by 'tcp dport { 25, 80, 443, 587 } ct state new accept'"
# The site lab: an internet MTA's (or a mail client's) message to the mailbox, and the
# mailbox's message to an internet MTA. No --timeout here: each call sets its own.
SWAKS_IN=(swaks --from alice@example.net --to bob@example.test --helo mta.example.net
          --header 'Subject: exflow sample' --body 'hello from the exflow lab')
SWAKS_OUT=(swaks --from bob@example.test --to carol@example.net --helo mail.example.test
           --header 'Subject: exflow sample, outbound' --body 'hello from the exflow lab')

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
    died_at_classic smtp-inbound 25 firewall "the firewall's 'ip daddr $SERVER tcp dport 25 drop' drops the SYNs: they enter on $IF_FC and never leave on $IF_FS"
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
    died_at_classic smtp-inbound 25 firewall "the firewall's 'tcp dport 25 reject with tcp reset' answers the SYN with its own RST: the SYN enters on $IF_FC and never leaves on $IF_FS"
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
    died_at_classic smtp-inbound 25 firewall "the firewall's 'reject with icmp type admin-prohibited' answers the SYN with ICMP 3/13 from $FW_C: the SYN enters on $IF_FC and never leaves on $IF_FS"
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
    FW2_SNAPLEN=256   # the download's segments, twice: headers only keep the dumpcap file under 100 KB
    capture_start "$n"
    fw_ttl=$(sysctl_in "$NS_F" net.ipv4.ip_default_ttl 64)
    srv_ttl=$(( $(sysctl_in "$NS_S" net.ipv4.ip_default_ttl 64) - 1 ))

    client 0 20 "${CURL[@]}" "http://$SERVER/"
    expect tcp "$SERVER" 80 SF "curl http://$SERVER/ exit 0: the small page stays far below the ${limit}-byte rule"
    # curl exit 56: "Recv failure: Connection reset by peer".
    client 56 20 "${CURL[@]}" "http://$SERVER/oab.bin"
    expect tcp "$SERVER" 80 RSTR "curl http://$SERVER/oab.bin ($BIG_BYTES bytes) exit $CLIENT_RC (connection reset); 'ct reply bytes > $limit reject with tcp reset' on the client's packets sends the client a RST claiming to be $SERVER once the server has sent $limit bytes; the responder side RESET first, so RSTR (the client's own RSTs to the server's late segments follow)" \
        "{\"rst_from\":\"resp\",\"rst_ttl\":$fw_ttl,\"server_ttl\":$srv_ttl,\"client_exit\":$CLIENT_RC}"
    died_at_classic http-client 80 firewall "the firewall's 'ct reply bytes > $limit reject with tcp reset' drops the client's ACKs and sends the client a RST of its own: the connection was cut inside the firewall"

    capture_stop "$n"
}


# --------------------------------------------------------------------------- site scenarios
# Each step makes one client call, checks its exit code, and writes the expect line (the
# connection) and the report entry (the expected flow's verdict) that call implies. Addresses
# come from lab_up (M_ADDR mailbox, C_ADDR internet client, MTA_ADDR internet MTA, RES_ADDR the
# mailbox's DNS resolver), so the same steps serve IPv4 and IPv6. ALLOWED names the rules.
ALLOWED="'tcp dport { 25, 80, 443, 587 } ct state new accept'"

# The mailbox looks up the next hop (dns-udp), then sends it a message (smtp-outbound).
step_dns_lookup() {
    local qtype=A out
    [ "$LAB_V6" -eq 0 ] || qtype=AAAA
    out=$(nsx "$NS_S" timeout 10 dig +tries=1 +time=3 +short -b "$M_ADDR" @"$RES_ADDR" mx.example.net "$qtype" 2>>"$LOG") \
        || die "dig in $NS_S failed"
    [ "$out" = "$MTA_ADDR" ] || die "dig answered '$out', expected $MTA_ADDR"
    expect_from "$M_ADDR" udp "$RES_ADDR" 53 SF "the mailbox's dig @$RES_ADDR mx.example.net $qtype exit 0, answer $MTA_ADDR; allowed by 'udp dport 53 accept' from the mailbox to its resolver"
    report_expected dns-udp "mailbox=$M_ADDR" "dns=$RES_ADDR" ok "dig @$RES_ADDR mx.example.net $qtype from the mailbox exit 0, answered ($MTA_ADDR)"
}
step_smtp_outbound() {
    run_in "$NS_S" 0 20 "${SWAKS_OUT[@]}" --timeout 10 --server "$MTA_ADDR" --port 25
    expect_from "$M_ADDR" tcp "$MTA_ADDR" 25 SF "the mailbox's swaks to the internet MTA $MTA_ADDR:25 (EHLO, MAIL, RCPT, DATA, QUIT) exit 0; allowed by 'ip saddr <mailbox> tcp dport 25 ct state new accept'"
    report_expected smtp-outbound "mailbox=$M_ADDR" internet ok "swaks from the mailbox to the internet MTA $MTA_ADDR:25 exit 0 (full dialogue)"
}
step_https() {
    client 0 20 "${CURL[@]}" -g -k "https://$URL_HOST/owa/"
    expect_from "$C_ADDR" tcp "$M_ADDR" 443 SF "curl -k https://$URL_HOST/owa/ exit 0; allowed by $ALLOWED"
    report_expected https-client internet "mailbox=$M_ADDR" ok "curl -k https://$URL_HOST/owa/ from the internet client $C_ADDR exit 0; allowed by $ALLOWED"
}
step_http() {
    client 0 20 "${CURL[@]}" -g "http://$URL_HOST/"
    expect_from "$C_ADDR" tcp "$M_ADDR" 80 SF "curl http://$URL_HOST/ exit 0; allowed by $ALLOWED"
    report_expected http-client internet "mailbox=$M_ADDR" ok "curl http://$URL_HOST/ from $C_ADDR exit 0; allowed by $ALLOWED"
}
step_smtp_inbound() {
    client 0 20 "${SWAKS_IN[@]}" --timeout 10 --server "$M_ADDR" --port 25
    expect_from "$C_ADDR" tcp "$M_ADDR" 25 SF "swaks --port 25 (EHLO, MAIL, RCPT, DATA, QUIT) exit 0; allowed by $ALLOWED"
    report_expected smtp-inbound internet "mailbox=$M_ADDR" "${SMTP_INBOUND_VERDICT:-ok}" "swaks from the internet host $C_ADDR to $M_ADDR:25 exit 0 (full dialogue); allowed by $ALLOWED"
}
step_submission() {
    client 0 20 "${SWAKS_IN[@]}" --timeout 10 --server "$M_ADDR" --port 587
    expect_from "$C_ADDR" tcp "$M_ADDR" 587 SF "swaks --port 587 (EHLO, MAIL, RCPT, DATA, QUIT) exit 0; allowed by $ALLOWED"
    report_expected smtp-submission internet "mailbox=$M_ADDR" ok "swaks from $C_ADDR to $M_ADDR:587 exit 0 (full dialogue); allowed by $ALLOWED"
}
# Inbound mail whose SYNs the firewall drops: swaks gives up after its 5 s timeout, exit 2
# ("error connecting to remote server").
step_smtp_inbound_dropped() { # rule text
    local t=5 retries
    retries=$(syn_retries_within "$t" 0.5)
    client 2 20 "${SWAKS_IN[@]}" --timeout "$t" --server "$M_ADDR" --port 25
    expect_from "$C_ADDR" tcp "$M_ADDR" 25 S0 "swaks --timeout $t --port 25 exit $CLIENT_RC (could not connect); SYNs silently dropped by '$1'; retransmitted SYNs keep the ISN so history stays S" \
        "{\"history\":\"S\",\"min_syn_retries\":$retries,\"client_exit\":$CLIENT_RC}"
    report_expected smtp-inbound internet "mailbox=$M_ADDR" blocked "nft rule '$1'; swaks --timeout $t exit $CLIENT_RC (connect timed out): SYNs unanswered, $retries retransmissions at least, nothing established"
    died_at smtp-inbound internet "mailbox=$M_ADDR" 25 firewall "the firewall's forward rule '$1' drops the SYNs: they enter on $IF_FC and never leave on $IF_FS"
}
# The whole healthy mix of the mailbox site.
healthy_traffic() {
    step_dns_lookup
    step_smtp_outbound
    step_https
    step_http
    step_smtp_inbound
    step_submission
}

scenario_exchange_healthy() {
    local n=exchange-healthy
    lab_up site
    firewall "" "$SITE_ALLOW"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "a mailbox server and its resolver; every flow allowed and used"
    healthy_traffic
    capture_stop "$n"
}

scenario_inbound_25_dropped() {
    local n=inbound-25-dropped rule="iifname \"$IF_FC\" ip daddr $SERVER tcp dport 25 drop"
    lab_up site
    firewall "        $rule" "$SITE_ALLOW"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "inbound mail dropped by the firewall, HTTPS allowed"
    step_smtp_inbound_dropped "$rule"
    step_https
    capture_stop "$n"
}

scenario_https_icmp_rejected() {
    local n=https-icmp-rejected rule="iifname \"$IF_FC\" ip daddr $SERVER tcp dport 443 reject with icmp type admin-prohibited"
    lab_up site
    firewall "        $rule" "$SITE_ALLOW"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "HTTPS rejected with ICMP administratively prohibited, inbound mail allowed"
    # Linux aborts a connect in SYN_SENT on any ICMP destination-unreachable (code 13 ->
    # EHOSTUNREACH): one SYN, curl exit 7 "No route to host".
    client 7 20 "${CURL[@]}" --connect-timeout 5 -k "https://$SERVER/owa/"
    expect tcp "$SERVER" 443 S0 "curl -k https://$SERVER/owa/ exit $CLIENT_RC (No route to host); '$rule' answers the SYN with ICMP 3/13 from the firewall ($FW_C); the client kernel aborts the connect on it, so there is a single SYN" \
        "{\"history\":\"S\",\"icmp\":{\"type\":3,\"code\":13},\"min_syn_retries\":0,\"client_exit\":$CLIENT_RC}"
    report_expected https-client internet "mailbox=$SERVER" rejected "nft rule '$rule': ICMP 3/13 (administratively prohibited) from $FW_C quoting the SYN; curl exit $CLIENT_RC (No route to host), nothing established"
    died_at https-client internet "mailbox=$SERVER" 443 firewall "the firewall's rule '$rule' answers the SYN with ICMP from $FW_C: it enters on $IF_FC and never leaves on $IF_FS"
    step_smtp_inbound
    capture_stop "$n"
}

scenario_submission_refused() {
    local n=submission-refused rule="iifname \"$IF_FC\" ip daddr $SERVER tcp dport 587 reject with tcp reset"
    lab_up site
    firewall "        $rule" "$SITE_ALLOW"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "SMTP submission refused by the firewall's TCP reset, HTTPS allowed"
    # swaks exit 2: "error connecting to remote server" (connection refused).
    client 2 20 "${SWAKS_IN[@]}" --timeout 5 --server "$SERVER" --port 587
    expect tcp "$SERVER" 587 REJ "swaks --port 587 exit $CLIENT_RC (connection refused); '$rule' answers the SYN with RST+ACK claiming to be $SERVER; RST TTL $(fw_ttl) (made by the firewall) vs $(srv_ttl) on the server's real packets" \
        "{\"history\":\"Sr\",\"rst_from\":\"resp\",\"rst_ttl\":$(fw_ttl),\"server_ttl\":$(srv_ttl),\"client_exit\":$CLIENT_RC}"
    report_expected smtp-submission internet "mailbox=$SERVER" refused "nft rule '$rule': the SYN is answered by a RST (TTL $(fw_ttl), the firewall's, vs $(srv_ttl) on the server's own packets); swaks exit $CLIENT_RC (connection refused), nothing established"
    died_at smtp-submission internet "mailbox=$SERVER" 587 firewall "the firewall's rule '$rule' answers the SYN with its own RST: the SYN enters on $IF_FC and never leaves on $IF_FS"
    step_https
    capture_stop "$n"
}

scenario_pop_imap_disabled() {
    local n=pop-imap-disabled allow="        iifname \"$IF_FC\" ip daddr $SERVER tcp dport { 110, 143 } ct state new accept"
    lab_up site
    dovecot_up
    firewall "" "$SITE_ALLOW
$allow"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "POP3 and IMAP4 answer the internet, though the site leaves them disabled (the catalogue's default: no [services] pop3 / imap4)"
    client 0 20 "$PY" "$WORK/mail-client.py" pop3 "$SERVER" "$DOVECOT_USER" "$DOVECOT_PASS"
    expect tcp "$SERVER" 110 SF "python poplib USER, PASS, STAT, RETR 1, QUIT against dovecot exit 0; allowed by '$allow'"
    report_unexpected tcp 110 "$CLIENT" "$SERVER" disabled-service "POP3 (role pop3, disabled by default; the site file does not switch it on) used from the internet: login and RETR succeeded (python poplib exit 0), allowed by the firewall's 'tcp dport { 110, 143 }' rule"
    client 0 20 "$PY" "$WORK/mail-client.py" imap4 "$SERVER" "$DOVECOT_USER" "$DOVECOT_PASS"
    expect tcp "$SERVER" 143 SF "python imaplib LOGIN, SELECT INBOX, FETCH, LOGOUT against dovecot exit 0; allowed by '$allow'"
    report_unexpected tcp 143 "$CLIENT" "$SERVER" disabled-service "IMAP4 (role imap4, disabled by default; the site file does not switch it on) used from the internet: login and FETCH succeeded (python imaplib exit 0)"
    step_https
    capture_stop "$n"
}

# A mirror ("SPAN") port in the firewall namespace: tc copies every packet arriving on the given
# interfaces, before the firewall filters or forwards it, out of the veth IF_SPAN, where tcpdump
# captures it. Each packet appears once, as it was on the wire towards the firewall (TTL before
# the hop); packets the firewall sends itself (RSTs, ICMP) are not mirrored.
IF_SPAN=$PFX-span
span_up() { # interfaces...
    local dev
    ip -n "$NS_F" link add "$IF_SPAN" type veth peer name "$IF_SPAN-peer"
    for dev in "$IF_SPAN" "$IF_SPAN-peer"; do
        nsx "$NS_F" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
        nsx "$NS_F" ip link set "$dev" up
    done
    for dev in "$@"; do
        nsx "$NS_F" tc qdisc add dev "$dev" ingress || die "tc: no ingress qdisc on $dev"
        nsx "$NS_F" tc filter add dev "$dev" parent ffff: protocol all u32 match u32 0 0 \
            action mirred egress mirror dev "$IF_SPAN" || die "tc: cannot mirror $dev (cls_u32, act_mirred)"
    done
}

scenario_edge_edgesync_blocked() {
    local n=edge-edgesync-blocked t=5 retries
    local rule="iifname \"$IF_FS\" ip saddr $SERVER ip daddr $EDGE tcp dport 50636 drop"
    lab_up site edge
    firewall "        $rule" "        iifname \"$IF_FC\" ip daddr $EDGE tcp dport 25 ct state new accept
        iifname \"$IF_FP\" ip saddr $EDGE ip daddr $SERVER tcp dport 25 ct state new accept
        iifname \"$IF_FS\" ip saddr $SERVER ip daddr $EDGE tcp dport { 25, 50636 } ct state new accept"
    # No single leg sees all three flows: the EdgeSync SYNs enter on the internal leg and are
    # dropped there, so they never reach the perimeter leg. Capture as a switch's SPAN port
    # would: every packet the firewall receives, on any of its three legs, mirrored once.
    span_up "$IF_FC" "$IF_FS" "$IF_FP"
    capture_start "$n" "$IF_SPAN"
    SITE_PROFILE=edge SITE_INTERNAL=("$INTERNAL_NET") SITE_PERIMETER=("$PERIMETER_NET")
    SITE_HOSTS=("mailbox=$SERVER" "edge=$EDGE") SITE_SERVICES=()
    site_write "$n" "an Edge server in the perimeter relays inbound mail to the mailbox server; EdgeSync from the mailbox to the Edge is dropped"

    # An internet MTA sends to the Edge; the Edge relays the message to the mailbox server
    # before it answers DATA (its reply is 451 if that fails), so swaks exit 0 means both
    # connections worked. The mailbox's log must show the message arriving from the Edge.
    client 0 30 "${SWAKS_IN[@]}" --timeout 20 --server "$EDGE" --port 25
    expect tcp "$EDGE" 25 SF "swaks from the internet to the Edge $EDGE:25 exit 0 (full dialogue); allowed by 'ip daddr $EDGE tcp dport 25 ct state new accept'"
    report_expected edge-smtp-inbound internet "edge=$EDGE" ok "swaks from the internet host $CLIENT to the Edge $EDGE:25 exit 0 (full dialogue)"
    grep -q "message from $EDGE" "$WORK/smtp25.log" || die "the mailbox server did not receive the Edge's relayed message"
    expect_from "$EDGE" tcp "$SERVER" 25 SF "the Edge's relay of that message to the mailbox $SERVER:25 (smtplib, inside the DATA phase; the mailbox logged it); allowed by 'ip saddr $EDGE ip daddr $SERVER tcp dport 25 ct state new accept'"
    report_expected edge-to-mailbox-smtp "edge=$EDGE" "mailbox=$SERVER" ok "the Edge relayed the message to the mailbox's port 25 (swaks exit 0 needs it; the mailbox server logged the message from $EDGE)"

    # EdgeSync: the mailbox opens TLS to the Edge's 50636; the firewall drops the SYNs and
    # openssl s_client hangs in connect until `timeout` ends it (exit 124).
    retries=$(syn_retries_within "$t" 0.5 "$NS_S")
    run_in "$NS_S" 124 "$t" openssl s_client -connect "$EDGE:50636" -servername edge.example.test
    expect_from "$SERVER" tcp "$EDGE" 50636 S0 "the mailbox's openssl s_client -connect $EDGE:50636 killed by timeout $t (exit $CLIENT_RC) while connecting; SYNs silently dropped by '$rule'; history stays S" \
        "{\"history\":\"S\",\"min_syn_retries\":$retries,\"client_exit\":$CLIENT_RC}"
    report_expected edgesync "mailbox=$SERVER" "edge=$EDGE" blocked "nft rule '$rule'; openssl s_client from the mailbox to $EDGE:50636 never connected (timeout $t, exit $CLIENT_RC): SYNs unanswered"
    died_at edgesync "mailbox=$SERVER" "edge=$EDGE" 50636 firewall "the firewall's rule '$rule' drops the SYNs: they enter on $IF_FS and never leave on $IF_FP" \
        "$IF_FS" "$IF_FP"
    capture_stop "$n"
}

scenario_cut_midstream_site() {
    local n=cut-midstream-site limit=20000
    local rule="ip saddr $CLIENT ip daddr $SERVER tcp dport 80 ct reply bytes > $limit reject with tcp reset"
    lab_up site
    # As in cut-midstream: the rule matches the client's ACKs once the server has sent more
    # than $limit bytes, drops them and sends the client a RST spoofed from $SERVER:80.
    firewall "        $rule" "$SITE_ALLOW"
    FW2_SNAPLEN=256   # the download's segments, twice: headers only keep the dumpcap file under 100 KB
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "an HTTP download from the mailbox server cut by the firewall's RST; HTTPS allowed"
    # curl exit 56: "Recv failure: Connection reset by peer". The only port-80 connection of
    # the capture: the role's verdict is the cut alone.
    client 56 20 "${CURL[@]}" "http://$SERVER/oab.bin"
    expect tcp "$SERVER" 80 RSTR "curl http://$SERVER/oab.bin ($BIG_BYTES bytes) exit $CLIENT_RC (connection reset); '$rule' sends the client a RST claiming to be $SERVER once the server has sent $limit bytes; responder side RESET first, so RSTR" \
        "{\"rst_from\":\"resp\",\"rst_ttl\":$(fw_ttl),\"server_ttl\":$(srv_ttl),\"client_exit\":$CLIENT_RC}"
    report_expected http-client internet "mailbox=$SERVER" cut "nft rule '$rule'; curl http://$SERVER/oab.bin exit $CLIENT_RC (Connection reset by peer) after the handshake and ${limit}+ bytes: the first RST claims to be the server but has TTL $(fw_ttl) vs the server's $(srv_ttl) (made by the firewall)"
    died_at http-client internet "mailbox=$SERVER" 80 firewall "the firewall's rule '$rule' drops the client's ACKs once $limit bytes have passed and sends the client a RST of its own: the connection was cut inside the firewall"
    step_https
    capture_stop "$n"
}

scenario_ipv6_site() {
    local n=ipv6-site rule="iifname \"$IF_FC\" ip6 daddr $SERVER6 tcp dport 25 drop"
    lab_up site v6
    firewall "        $rule" "$SITE_ALLOW6" ip6
    capture_start "$n"
    SITE_PROFILE=mailbox SITE_INTERNAL=("$INTERNAL_NET6") SITE_PERIMETER=()
    SITE_HOSTS=("mailbox=$SERVER6" "dns=$RESOLVER6") SITE_SERVICES=()
    site_write "$n" "the healthy mix over IPv6 only; inbound mail dropped"
    step_dns_lookup
    step_smtp_outbound
    step_https
    step_http
    step_smtp_inbound_dropped "$rule"
    step_submission
    capture_stop "$n"
}

scenario_scan_beside_traffic() {
    local n=scan-beside-traffic out state port
    # nmap -sS from a second internet address over 30 ports. Open: 25, 443 (allowed, served).
    # Closed: 110, 143, 993, 995 (a legacy rule lets them through, nothing listens: the server's
    # RST). Filtered: the other 24 (the firewall's policy drop).
    local open=25,443 closed=110,143,993,995
    local filtered=21,22,23,53,88,111,135,139,389,445,465,636,1433,3268,3306,3389,5060,5985,5986,6001,8080,8443,50636,64327
    local allow="        iifname \"$IF_FC\" ip daddr $SERVER tcp dport { 110, 143, 993, 995 } ct state new accept"
    lab_up site
    nsx "$NS_C" ip addr add "$SCANNER/24" dev "$IF_C"
    firewall "" "$SITE_ALLOW
$allow"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "a port scan from a second internet address beside normal HTTPS and SMTP traffic"

    # The scanner's half-open probes of 443 and 25 are the scan's, not failed attempts of
    # https-client / smtp-inbound: those keep the legitimate client's verdict.
    STEP_NOTE="; the scanner's ($SCANNER) half-open probes of this port belong to the scan and must not make this flow flaky"
    step_https
    client 0 60 nmap -sS -Pn -n -T4 --max-retries 1 --host-timeout 30s -e "$IF_C" -S "$SCANNER" \
        -p "$open,$closed,$filtered" -oG "$WORK/nmap.gnmap" "$SERVER"
    for state in open closed filtered; do
        out=$(grep -o "[0-9]*/$state/tcp" "$WORK/nmap.gnmap" | cut -d/ -f1 | sort -n | paste -sd, -)
        [ "$out" = "$(tr , '\n' <<<"${!state}" | sort -n | paste -sd, -)" ] \
            || die "nmap found $state ports '$out', the firewall and servers make '${!state}'"
    done
    expect_many "$SCANNER" tcp "$SERVER" "$open" RSTO "nmap -sS SYN to an open port: the server's SYN-ACK, then the scanner's kernel (no socket) resets: half-open, RSTO" \
        '{"history":"ShR"}'
    expect_many "$SCANNER" tcp "$SERVER" "$closed" REJ "nmap -sS SYN to a port the firewall lets through ('$allow') where nothing listens: the server's own RST (TTL $(srv_ttl))" \
        "{\"history\":\"Sr\",\"rst_from\":\"resp\",\"rst_ttl\":$(srv_ttl)}"
    expect_many "$SCANNER" tcp "$SERVER" "$filtered" S0 "nmap -sS SYN (and one retry, --max-retries 1) to a port the firewall's policy drops: no answer"
    report_scan "$SCANNER" "nmap -sS -Pn --max-retries 1 from $SCANNER over 30 ports of $SERVER (exit 0): 2 open (25, 443), 4 closed by the server's RST (110, 143, 993, 995), 24 filtered by the firewall's policy drop"
    step_smtp_inbound
    STEP_NOTE=
    capture_stop "$n"
}

scenario_two_interfaces() {
    local n=two-interfaces
    lab_up site
    firewall "" "$SITE_ALLOW"
    # -i any: the firewall's both legs (and lo) in one capture, Linux cooked v2 headers. Every
    # forwarded packet is captured twice: arriving on one leg and leaving by the other (TTL one
    # less), so every packet of every connection appears exactly twice ("copies": 2).
    capture_start "$n" any -y LINUX_SLL2
    EXPECT_ALL='{"copies":2}'
    REPORT_DUPLICATES=true
    site_mailbox_v4
    site_write "$n" "the healthy mix captured on both firewall interfaces at once (tcpdump -i any)"
    STEP_NOTE="; captured on both firewall legs (tcpdump -i any), so every packet of it appears twice: the verdict is the single-interface one"
    healthy_traffic
    EXPECT_ALL='{}' STEP_NOTE=
    capture_stop "$n"
}

scenario_one_direction() {
    local n=one-direction
    lab_up site
    firewall "" "$SITE_ALLOW"
    # -Q in on the client-side leg: only what arrives from the client (its SYN, ACKs, data,
    # FIN); nothing the server sends. Both connections work; the capture cannot show it.
    capture_start "$n" "$IF_FC" -Q in
    site_mailbox_v4
    site_write "$n" "working HTTPS and SMTP captured in one direction only (tcpdump -Q in on the client-side leg)"
    # The client closes each connection with a FIN of its own after the server's last data and
    # no responder packet is in the capture: Zeek's SH (SYN and FIN from the originator, no SYN-ACK).
    client 0 20 "${CURL[@]}" -k "https://$SERVER/owa/"
    expect tcp "$SERVER" 443 SH "curl -k https://$SERVER/owa/ exit 0, but -Q in keeps only the client's packets: SYN, ACKs, data, FIN; none of the server's" \
        '{"resp_pkts":0}'
    report_expected https-client internet "mailbox=$SERVER" one_sided "curl -k https://$SERVER/owa/ exit 0 (it worked), but the capture (tcpdump -Q in on the client-side leg) holds only the client's packets"
    client 0 20 "${SWAKS_IN[@]}" --timeout 10 --server "$SERVER" --port 25
    expect tcp "$SERVER" 25 SH "swaks --port 25 exit 0 (full dialogue), but only the client's packets are captured" '{"resp_pkts":0}'
    report_expected smtp-inbound internet "mailbox=$SERVER" one_sided "swaks to $SERVER:25 exit 0 (it worked), but only the client's packets are captured"
    # dumpcap has no -Q: the two-interface capture beside it holds both directions on both
    # legs, so there both flows are what the clients' exit codes say: ok.
    FW2_REPORT_JQ='.expected |= map(.verdict = "ok" | .why += "; the two-interface capture (dumpcap on both legs, both directions) holds the server packets too")'
    capture_stop "$n"
}

# --------------------------------------------------------------------------- issue 14's scenarios
# Load a whole nftables ruleset into the firewall (the NATed site's, with nat chains and an ip6 table).
firewall_nft() { # ruleset text
    printf '%s\n' "$1" >"$WORK/fw.nft"
    nsx "$NS_F" nft -f "$WORK/fw.nft" || die "nft -f fw.nft"
    nsx "$NS_F" sysctl -qw net.netfilter.nf_conntrack_acct=1
    printf '%s\n' "--- firewall rules:" >>"$LOG"
    nsx "$NS_F" nft list ruleset >>"$LOG"
}

# A switch's SPAN session of both firewall ports, received and transmitted: tc (clsact) copies
# every packet in and out of each leg to the veth IF_SPAN, where a second tcpdump captures.
# A NATed connection appears once per leg, under that leg's addresses.
span_both_ways_up() { # interfaces...
    local dev dir
    ip -n "$NS_F" link add "$IF_SPAN" type veth peer name "$IF_SPAN-peer"
    for dev in "$IF_SPAN" "$IF_SPAN-peer"; do
        nsx "$NS_F" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
        nsx "$NS_F" ip link set "$dev" up
    done
    for dev in "$@"; do
        nsx "$NS_F" tc qdisc add dev "$dev" clsact || die "tc: no clsact qdisc on $dev"
        for dir in ingress egress; do
            nsx "$NS_F" tc filter add dev "$dev" "$dir" protocol all u32 match u32 0 0 \
                action mirred egress mirror dev "$IF_SPAN" || die "tc: cannot mirror $dev $dir"
        done
    done
}

# A NATed dual-stack mailbox. IPv4: the internet reaches the mailbox only by the firewall's
# public address (DNAT for 25, 443, 587), and the mailbox's own traffic leaves under that address
# (SNAT); the client namespace has no route to the internal network. IPv6: routed, no NAT, and
# the firewall's ip6 table forgot 443 (IPv6 443 blocked while IPv4 443 works).
scenario_nat_dual_stack() {
    local n=nat-dual-stack t=5 retries out
    local dnat="iifname \"$IF_FC\" ip daddr $NAT_PUBLIC tcp dport { 25, 443, 587 } dnat to $SERVER"
    local snat="oifname \"$IF_FC\" ip saddr $SERVER snat to $NAT_PUBLIC"
    local allow4="iifname \"$IF_FC\" ip daddr $SERVER tcp dport { 25, 443, 587 } ct status dnat ct state new accept"
    local allow6="iifname \"$IF_FC\" ip6 daddr $SERVER6 tcp dport { 25, 587 } ct state new accept"
    lab_up site dual
    nsx "$NS_C" ip route del "$INTERNAL_NET"
    nsx "$NS_F" ip addr add "$NAT_PUBLIC/24" dev "$IF_FC"
    firewall_nft "flush ruleset
table ip exf {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        $dnat
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        $snat
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        $allow4
        iifname \"$IF_FS\" ip saddr $SERVER tcp dport 25 ct state new accept
        iifname \"$IF_FS\" ip saddr $SERVER ip daddr $RESOLVER udp dport 53 accept
    }
}
table ip6 exf6 {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        $allow6
    }
}"
    # A second view: a SPAN of both firewall ports, both ways (nat-dual-stack-both-legs.pcap),
    # and a third: the firewall's `tcpdump -i any` (nat-dual-stack-any.pcap, Linux cooked v2:
    # each packet tagged with its interface index and direction). Both hold every packet once per
    # leg, in time order; they share the expect lines.
    local both=$n-both-legs any=$n-any i both_pid any_pid
    span_both_ways_up "$IF_FC" "$IF_FS"
    : >"$WORK/$both.expect.jsonl"
    ip netns exec "$NS_F" tcpdump -i "$IF_SPAN" -w "$WORK/$both.pcap" -U -n -Z root "$CAP_FILTER" 2>"$WORK/tcpdump-both.log" &
    SERVER_PIDS+=($!)
    both_pid=$!
    # -i any would also see the mirror's veth pair: the filter keeps the two legs only (libpcap's
    # `ifindex` primitive, SLL2).
    local legs
    legs="ifindex $(ip -n "$NS_F" -o link show dev "$IF_FC" | cut -d: -f1) or ifindex $(ip -n "$NS_F" -o link show dev "$IF_FS" | cut -d: -f1)"
    ip netns exec "$NS_F" tcpdump -i any -y LINUX_SLL2 -w "$WORK/$any.pcap" -U -n -Z root "($CAP_FILTER) and ($legs)" 2>"$WORK/tcpdump-any.log" &
    SERVER_PIDS+=($!)
    any_pid=$!
    for i in $(seq 1 50); do
        grep -qs 'listening on' "$WORK/tcpdump-both.log" && grep -qs 'listening on' "$WORK/tcpdump-any.log" && break
        sleep 0.1
    done
    grep -qs 'listening on' "$WORK/tcpdump-both.log" || die "tcpdump on $IF_SPAN did not start"
    grep -qs 'listening on' "$WORK/tcpdump-any.log" || die "tcpdump -i any did not start"
    # The SPAN view: the firewall's outside leg, where IPv4 traffic carries the public address.
    capture_start "$n"
    SITE_PROFILE=mailbox SITE_INTERNAL=("$INTERNAL_NET" "$INTERNAL_NET6") SITE_PERIMETER=()
    SITE_HOSTS=("mailbox=$SERVER $SERVER6" "dns=$RESOLVER") SITE_SERVICES=() SITE_NAT=("mailbox=$NAT_PUBLIC")
    site_write "$n" "a dual-stack mailbox behind a NAT firewall (public $NAT_PUBLIC for IPv4); the IPv6 rule for 443 was forgotten"
    local mbx="mailbox=$SERVER@$NAT_PUBLIC" mbx6="mailbox=$SERVER6"
    STEP_NOTE="; IPv4 through NAT: seen on the outside leg as $NAT_PUBLIC"

    out=$(nsx "$NS_S" timeout 10 dig +tries=1 +time=3 +short -b "$SERVER" @"$RESOLVER" mx.example.net A 2>>"$LOG") \
        || die "dig in $NS_S failed"
    [ "$out" = "$INET_MTA" ] || die "dig answered '$out', expected $INET_MTA"
    expect_from "$NAT_PUBLIC" udp "$RESOLVER" 53 SF "the mailbox's dig -b $SERVER @$RESOLVER mx.example.net A exit 0, answer $INET_MTA; SNAT '$snat' makes it $NAT_PUBLIC on the outside leg"
    both_legs "$SERVER" "$NAT_PUBLIC" udp "$RESOLVER" "$RESOLVER" 53 SF "the mailbox's dig @$RESOLVER exit 0 (SNAT)"
    report_expected dns-udp "$mbx" "dns=$RESOLVER" ok "dig @$RESOLVER from the mailbox exit 0, answered ($INET_MTA)"

    run_in "$NS_S" 0 20 "${SWAKS_OUT[@]}" --timeout 10 --server "$INET_MTA" --port 25
    grep -q "message from $NAT_PUBLIC" "$WORK/inet-mta.log" || die "the internet MTA did not log the mailbox's message from $NAT_PUBLIC (SNAT)"
    expect_from "$NAT_PUBLIC" tcp "$INET_MTA" 25 SF "the mailbox's swaks to $INET_MTA:25 exit 0 (full dialogue); SNAT to $NAT_PUBLIC (the MTA logged the message from $NAT_PUBLIC)"
    both_legs "$SERVER" "$NAT_PUBLIC" tcp "$INET_MTA" "$INET_MTA" 25 SF "the mailbox's swaks to $INET_MTA:25 exit 0 (SNAT)"
    report_expected smtp-outbound "$mbx" internet ok "swaks from the mailbox to the internet MTA $INET_MTA:25 exit 0; the MTA logged it from $NAT_PUBLIC (SNAT '$snat')"

    client 0 20 "${CURL[@]}" -k "https://$NAT_PUBLIC/owa/"
    grep -q "^$CLIENT .*GET /owa/" "$WORK/nginx-access.log" || die "nginx did not log the client's GET /owa/ from $CLIENT (DNAT)"
    expect tcp "$NAT_PUBLIC" 443 SF "curl -k https://$NAT_PUBLIC/owa/ exit 0; DNAT '$dnat' (nginx on $SERVER logged the request from $CLIENT)"
    both_legs "$CLIENT" "$CLIENT" tcp "$SERVER" "$NAT_PUBLIC" 443 SF "curl -k https://$NAT_PUBLIC/owa/ exit 0 (DNAT)"
    report_expected https-client internet "$mbx" ok "curl -k https://$NAT_PUBLIC/owa/ from $CLIENT exit 0; DNAT to $SERVER, allowed by '$allow4'"

    client 0 20 "${SWAKS_IN[@]}" --timeout 10 --server "$NAT_PUBLIC" --port 25
    expect tcp "$NAT_PUBLIC" 25 SF "swaks to $NAT_PUBLIC:25 exit 0 (full dialogue); DNAT to $SERVER:25"
    both_legs "$CLIENT" "$CLIENT" tcp "$SERVER" "$NAT_PUBLIC" 25 SF "swaks to $NAT_PUBLIC:25 exit 0 (DNAT)"
    report_expected smtp-inbound internet "$mbx" ok "swaks from $CLIENT to $NAT_PUBLIC:25 exit 0 (full dialogue); DNAT to $SERVER"
    client 0 20 "${SWAKS_IN[@]}" --timeout 10 --server "$NAT_PUBLIC" --port 587
    expect tcp "$NAT_PUBLIC" 587 SF "swaks to $NAT_PUBLIC:587 exit 0 (full dialogue); DNAT to $SERVER:587"
    both_legs "$CLIENT" "$CLIENT" tcp "$SERVER" "$NAT_PUBLIC" 587 SF "swaks to $NAT_PUBLIC:587 exit 0 (DNAT)"
    report_expected smtp-submission internet "$mbx" ok "swaks from $CLIENT to $NAT_PUBLIC:587 exit 0 (full dialogue); DNAT to $SERVER"
    grep -c "message from $CLIENT" "$WORK/smtp25.log" "$WORK/smtp587.log" >>"$LOG" \
        || die "the mailbox did not log the client's messages"

    STEP_NOTE="; IPv6, no NAT"
    retries=$(syn_retries_within "$t" 0.5)
    # curl exit 28: connect timed out (the ip6 table's policy drop: no rule for 443).
    client 28 20 "${CURL[@]}" -g -k --connect-timeout "$t" "https://[$SERVER6]/owa/"
    expect_from "$CLIENT6" tcp "$SERVER6" 443 S0 "curl -k --connect-timeout $t https://[$SERVER6]/owa/ exit $CLIENT_RC (timeout); the ip6 table allows only '$allow6': its policy drops the SYNs" \
        "{\"history\":\"S\",\"min_syn_retries\":$retries,\"client_exit\":$CLIENT_RC}"
    EXPECT=$WORK/$both.expect.jsonl expect_from "$CLIENT6" tcp "$SERVER6" 443 S0 "curl to [$SERVER6]:443 exit $CLIENT_RC: the SYNs are mirrored as they enter $IF_FC and never leave by $IF_FS (the retransmissions keep the ISN, so no copies count is claimed)" \
        "{\"history\":\"S\",\"min_syn_retries\":$retries,\"client_exit\":$CLIENT_RC}"
    report_expected https-client internet "$mbx6" blocked "curl to [$SERVER6]:443 exit $CLIENT_RC (connect timed out): the IPv6 rule for 443 is missing ('$allow6' only), the ip6 forward policy drops the SYNs; IPv4 443 works"
    died_at https-client internet "$mbx6" 443 firewall "the firewall's ip6 forward chain has no rule for 443 ('$allow6' only; policy drop): the SYNs enter on $IF_FC and never leave on $IF_FS"
    client 0 20 "${SWAKS_IN[@]}" --timeout 10 --server "$SERVER6" --port 25
    expect_from "$CLIENT6" tcp "$SERVER6" 25 SF "swaks to [$SERVER6]:25 exit 0 (full dialogue); allowed by '$allow6'"
    EXPECT=$WORK/$both.expect.jsonl expect_from "$CLIENT6" tcp "$SERVER6" 25 SF "swaks to [$SERVER6]:25 exit 0; no NAT: every packet mirrored on both legs under the same addresses" \
        '{"copies":2}'

    report_expected smtp-inbound internet "$mbx6" ok "swaks from $CLIENT6 to [$SERVER6]:25 exit 0 (full dialogue); allowed by '$allow6'"
    STEP_NOTE=
    sleep 2   # as capture_halt: late FINs and ACKs
    stop_capturer "$both_pid" "tcpdump on $IF_SPAN"
    stop_capturer "$any_pid" "tcpdump -i any"
    cat "$WORK/tcpdump-both.log" "$WORK/tcpdump-any.log" >>"$LOG"
    capture_stop "$n"
    # The both-legs SPAN: the same site and verdicts; every packet of the site's traffic is in
    # it twice (once per leg), the IPv4 ones under different addresses.
    cp "$OUT/$n.site.toml" "$WORK/$both.site.toml"
    cp "$OUT/$n.site.toml" "$WORK/$any.site.toml"
    cp "$WORK/$both.expect.jsonl" "$WORK/$any.expect.jsonl"
    REPORT_DUPLICATES=true
    capture_finish "$both"
    capture_finish "$any"
}
# One connection of nat-dual-stack as the both-legs SPAN sees it: once on the inside leg, once
# on the outside leg (IPv4: other addresses), each leg's copy of every packet once.
both_legs() { # orig-inside orig-outside proto resp-inside resp-outside port state why
    local f=$WORK/$n-both-legs.expect.jsonl
    EXPECT=$f expect_from "$1" "$3" "$4" "$6" "$7" "$8; the inside leg ($IF_FS): $1 -> $4" '{"copies":1}'
    EXPECT=$f expect_from "$2" "$3" "$5" "$6" "$7" "$8; the outside leg ($IF_FC): $2 -> $5" '{"copies":1}'
}

# Drops beyond the firewall: the mailbox's own host firewall (nftables in exf-server) drops 587
# and resets 80 (nginx listens there), next to the firewall's drop of inbound 25. Only a capture
# on both legs can tell them apart: the 587 and 80 SYNs leave the firewall toward the mailbox,
# the 25 SYNs never do. (All three are roles the mailbox profile enables by default, so the
# verdicts hold with an inferred topology too.)
scenario_beyond_firewall() {
    local n=beyond-firewall t=5 retries
    local rule="iifname \"$IF_FC\" ip daddr $SERVER tcp dport 25 drop"
    local host_drop="tcp dport 587 drop" host_reset="tcp dport 80 reject with tcp reset"
    lab_up site
    firewall "        $rule" "$SITE_ALLOW"
    cat >"$WORK/host.nft" <<EOF
flush ruleset
table inet exfhost {
    chain input {
        type filter hook input priority filter; policy accept;
        $host_drop
        $host_reset
    }
}
EOF
    nsx "$NS_S" nft -f "$WORK/host.nft" || die "nft -f host.nft in $NS_S"
    nsx "$NS_S" nft list ruleset >>"$LOG"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "the mailbox's own host firewall drops 587 and resets 80; the site firewall drops inbound 25"
    step_https
    step_smtp_inbound_dropped "$rule"

    retries=$(syn_retries_within "$t" 0.5)
    client 2 20 "${SWAKS_IN[@]}" --timeout "$t" --server "$SERVER" --port 587
    expect tcp "$SERVER" 587 S0 "swaks --timeout $t --port 587 exit $CLIENT_RC (could not connect); the firewall forwards the SYNs (allowed by $ALLOWED), the mailbox's host firewall '$host_drop' drops them" \
        "{\"history\":\"S\",\"min_syn_retries\":$retries,\"client_exit\":$CLIENT_RC}"
    report_expected smtp-submission internet "mailbox=$SERVER" blocked "the mailbox's host firewall (nftables in its namespace) '$host_drop'; swaks exit $CLIENT_RC (connect timed out): SYNs unanswered"
    died_at smtp-submission internet "mailbox=$SERVER" 587 beyond_firewall "the site firewall allows 587 and forwards the SYNs out of $IF_FS; the mailbox's own '$host_drop' drops them"

    # curl exit 7: connection refused, though nginx listens on 80.
    client 7 20 "${CURL[@]}" --connect-timeout "$t" "http://$SERVER/"
    expect tcp "$SERVER" 80 REJ "curl http://$SERVER/ exit $CLIENT_RC (connection refused) though nginx listens: the mailbox's host firewall '$host_reset' answers the SYN with a RST from the mailbox itself (TTL $(srv_ttl) after the firewall's hop, as the server's own packets)" \
        "{\"history\":\"Sr\",\"rst_from\":\"resp\",\"rst_ttl\":$(srv_ttl),\"client_exit\":$CLIENT_RC}"
    report_expected http-client internet "mailbox=$SERVER" refused "the mailbox's host firewall '$host_reset': the SYN is answered by a RST from the mailbox (TTL $(srv_ttl), the server's own); curl exit $CLIENT_RC (connection refused)"
    died_at http-client internet "mailbox=$SERVER" 80 beyond_firewall "the site firewall allows 80 ($ALLOWED); the SYN leaves on $IF_FS and the mailbox's own '$host_reset' answers it"
    capture_stop "$n"
}

# A remote mirror: the firewall's outside leg (both directions: tc clsact ingress and egress)
# mirrored to a sensor namespace over a dedicated underlay (/30, MTU 9000): through a Linux VXLAN
# device (tc mirred into it; VNI $VXLAN_VNI, UDP 4789), and in GRE three ways: ERSPAN type II,
# ERSPAN type III and plain GRE carrying the Ethernet frame (transparent Ethernet bridging).
# This kernel has no GRE (CONFIG_NET_IPGRE is off: `ip link add type erspan|gretap` fails), so
# the GRE feeds come from a small exporter in the firewall namespace: it reads the leg's frames
# (AF_PACKET, both directions) and sends each, once per feed, over a raw IP socket (protocol 47),
# with the headers `ip link add type erspan erspan_ver 1|2` and `type gretap` would write
# (ERSPAN sessions 100 and 101; index / HW ID as documented in it). The sensor drops
# every feed in its input hook (no ICMP unreachables back); tcpdump there captures them as they arrive.
VXLAN_VNI=4242 ERSPAN_SESSION=100
cat >"$WORK/erspan-exporter.py" <<'EOF'
import socket
import struct
import sys
import time

dev, src, dst, session, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
index = socket.if_nametoindex(dev)
PACKET_OUTGOING = 4
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))   # ETH_P_ALL
rx.bind((dev, 0))
rx.settimeout(0.5)
tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)                          # GRE
tx.bind((src, 0))
print(f"mirroring {dev} (ifindex {index}) to {dst}: ERSPAN II session {session}, "
      f"ERSPAN III session {session + 1}, GRE (transparent Ethernet bridging)", flush=True)
seq2 = seq3 = sent = 0
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        frame, (_ifname, _proto, pkttype, _hatype, _addr) = rx.recvfrom(65535)
    except socket.timeout:
        continue
    # ERSPAN type II: GRE with a sequence number (S bit), protocol 0x88BE; header: version 1,
    # VLAN 0 | COS 0, En 0, T 0, session | reserved 0, index (the mirrored port's ifindex).
    gre = struct.pack(">HHI", 0x1000, 0x88BE, seq2)
    erspan2 = struct.pack(">HHI", 1 << 12, session & 0x3FF, index & 0xFFFFF)
    tx.sendto(gre + erspan2 + frame, (dst, 0))
    seq2 = (seq2 + 1) & 0xFFFFFFFF
    # ERSPAN type III: GRE (S bit), protocol 0x22EB; header: version 2, VLAN 0, COS 0, BSO 0,
    # T 0, session | timestamp (100 us units, Gra 00) | SGT 0, P 0, FT 0 (Ethernet), HW ID 1,
    # D (0 ingress, 1 egress: the frame's direction on the port), Gra 0, O 0 (no subheader).
    gre = struct.pack(">HHI", 0x1000, 0x22EB, seq3)
    d = 1 if pkttype == PACKET_OUTGOING else 0
    erspan3 = struct.pack(">III", (2 << 28) | ((session + 1) & 0x3FF),
                          int(time.time() * 10000) & 0xFFFFFFFF, (1 << 4) | (d << 3))
    tx.sendto(gre + erspan3 + frame, (dst, 0))
    seq3 = (seq3 + 1) & 0xFFFFFFFF
    # Plain GRE carrying the Ethernet frame (protocol 0x6558), as a Linux gretap device sends it.
    tx.sendto(struct.pack(">HH", 0, 0x6558) + frame, (dst, 0))
    sent += 1
print(f"{sent} frames mirrored", flush=True)
EOF
sensor_up() {
    local dir i
    ip netns add "$NS_M"
    nsx "$NS_M" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    nsx "$NS_M" ip link set lo up
    veth "$NS_F" "$IF_FU" "$NS_M" "$IF_M"
    nsx "$NS_F" ip link set "$IF_FU" mtu 9000
    nsx "$NS_M" ip link set "$IF_M" mtu 9000
    nsx "$NS_F" ip addr add "$FW_U/30" dev "$IF_FU"
    nsx "$NS_M" ip addr add "$SENSOR/30" dev "$IF_M"
    nsx "$NS_M" nft -f - <<EOF || die "nft in $NS_M"
table inet exfsensor {
    chain input {
        type filter hook input priority filter; policy accept;
        udp dport 4789 drop
        meta l4proto gre drop
    }
}
EOF
    nsx "$NS_F" ip link add "$IF_VX" type vxlan id "$VXLAN_VNI" local "$FW_U" remote "$SENSOR" \
        dstport 4789 dev "$IF_FU" nolearning || die "ip link add type vxlan"
    nsx "$NS_F" ip link set "$IF_VX" up
    nsx "$NS_F" tc qdisc add dev "$IF_FC" clsact || die "tc: no clsact qdisc on $IF_FC"
    for dir in ingress egress; do
        nsx "$NS_F" tc filter add dev "$IF_FC" "$dir" protocol all u32 match u32 0 0 \
            action mirred egress mirror dev "$IF_VX" || die "tc: cannot mirror $IF_FC $dir into $IF_VX"
    done
    start_in "$NS_F" erspan-exporter "$PY" -u "$WORK/erspan-exporter.py" "$IF_FC" "$FW_U" "$SENSOR" "$ERSPAN_SESSION" 300
    for i in $(seq 1 50); do
        grep -qs '^mirroring' "$WORK/erspan-exporter.log" && return 0
        sleep 0.1
    done
    die "the ERSPAN exporter did not start: $(cat "$WORK/erspan-exporter.log")"
}

scenario_tunnel_mirror() {
    local n=tunnel-mirror name kind filter count
    lab_up site
    firewall "" "$SITE_ALLOW"
    sensor_up
    FW2=0 CAP_NS=$NS_M CAP_FILTER="udp port 4789 or ip proto 47"
    capture_start "$n" "$IF_M"
    site_mailbox_v4
    STEP_NOTE="; mirrored from the firewall's outside leg to the sensor in a tunnel: the inner packets are the plain capture's"
    healthy_traffic
    STEP_NOTE=
    capture_halt
    # One capture on the sensor's underlay, split by feed: each file holds only encapsulated
    # packets (outer 192.0.2.249 -> 192.0.2.250), and the same inner connections.
    # The GRE feeds are told apart by the GRE protocol type (the outer IPv4 header has no options).
    local display
    for kind in vxlan erspan erspan3 gre; do
        name=mirror-$kind
        case $kind in
            vxlan) filter="udp port 4789" display="vxlan" ;;
            erspan) filter="ip proto 47 and ip[22:2] = 0x88be" display="erspan && gre.proto == 0x88be" ;;
            erspan3) filter="ip proto 47 and ip[22:2] = 0x22eb" display="erspan && gre.proto == 0x22eb" ;;
            gre) filter="ip proto 47 and ip[22:2] = 0x6558" display="gre.proto == 0x6558" ;;
        esac
        tcpdump -r "$CAP" -w "$WORK/$name.pcap" "$filter" 2>>"$LOG" || die "tcpdump -r $CAP $filter"
        count=$(tshark -r "$WORK/$name.pcap" -Y "$display && ip.src == $FW_U && ip.dst == $SENSOR" 2>>"$LOG" | wc -l)
        [ "$count" -gt 0 ] && [ "$count" -eq "$(tshark -r "$WORK/$name.pcap" 2>>"$LOG" | wc -l)" ] \
            || die "$name.pcap: $count packets tshark reads as '$display', not all of them"
        say "$name.pcap: $count $kind packets"
        cp "$EXPECT" "$WORK/$name.expect.jsonl"
        site_write "$name" "the healthy mix, mirrored from the firewall's outside leg to a sensor in $kind"
        capture_finish "$name"
    done
}

# Outage captures: only the failed port (a BPF filter, as a firewall engineer would capture
# during an outage), no site file. The truth: the destination that was tried is the mailbox,
# with its verdict; what the filter leaves out happened but is not in the capture.
outage_setup() { # name filter
    FW2=0 CAP_FILTER=$2
    capture_start "$1"
    REPORT_NO_SITE=1 SITE_INTERNAL=("$SERVER/32") SITE_PERIMETER=()
}
scenario_outage_587_refused() {
    local n=outage-587-refused i rule="iifname \"$IF_FC\" ip daddr $SERVER tcp dport 587 reject with tcp reset"
    lab_up site
    firewall "        $rule" "$SITE_ALLOW"
    outage_setup "$n" "tcp port 587"
    REPORT_EXTRA=$(jq -cn --arg f "$CAP_FILTER" --arg m "$SERVER" \
        '{site: null, capture_filter: $f, exchange_servers: [$m], not_exchange: []}')
    for i in 1 2 3; do
        client 2 20 "${SWAKS_IN[@]}" --timeout 5 --server "$SERVER" --port 587
        expect tcp "$SERVER" 587 REJ "attempt $i: swaks --port 587 exit $CLIENT_RC (connection refused); '$rule' answers the SYN with RST+ACK claiming to be $SERVER (TTL $(fw_ttl), the firewall's)" \
            "{\"history\":\"Sr\",\"rst_from\":\"resp\",\"rst_ttl\":$(fw_ttl),\"client_exit\":$CLIENT_RC}"
    done
    report_expected smtp-submission internet "mailbox=$SERVER" refused "three swaks to $SERVER:587, each exit 2 (connection refused) by '$rule'; the capture holds only port 587 and no site file: the destination tried is the mailbox"
    # Beside the outage, working traffic the capture filter leaves out.
    client 0 20 "${CURL[@]}" -k "https://$SERVER/owa/"
    client 0 20 "${SWAKS_IN[@]}" --timeout 10 --server "$SERVER" --port 25
    capture_stop "$n"
}
scenario_outage_25_dropped() {
    local n=outage-25-dropped rule="iifname \"$IF_FC\" ip daddr $SERVER tcp dport 25 drop"
    lab_up site
    firewall "        $rule" "$SITE_ALLOW"
    outage_setup "$n" "tcp port 25"
    REPORT_EXTRA=$(jq -cn --arg f "$CAP_FILTER" --arg m "$SERVER" --arg mta "$INET_MTA" \
        '{site: null, capture_filter: $f, exchange_servers: [$m], not_exchange: [$mta]}')
    # The mailbox's own outbound mail works (the internet MTA receives it: it is not the
    # mailbox); the internet's inbound mail to the mailbox is dropped.
    step_smtp_outbound
    step_smtp_inbound_dropped "$rule"
    client 0 20 "${CURL[@]}" -k "https://$SERVER/owa/"   # not in the capture (filter)
    capture_stop "$n"
}

# --------------------------------------------------------------------------- issue 15: payload scenarios
# What the firewall did to the payload, not only whether the port opened: a stand-in for Cisco
# ASA's `inspect esmtp` in front of the mailbox's Postfix, Postfix refusing a recipient and
# deferring a sender, a short conntrack timeout on 443 killing ActiveSync-like long polls, a
# string match resetting TLS by server name, and Exchange's virtual directories on port 80.
# Besides the usual files, each writes <name>.expect-findings.json (the findings exflow must
# report, from the rules, the proxy's configuration and log, client exit codes and the server's
# log; an empty list where none may appear) and, where HTTP or SNI tell the Exchange service,
# <name>.expect-services.json (one line per connection). No two-interface (dumpcap) files.

# Exchange's virtual directories on port 80 as a mailbox's IIS answers them without
# credentials: path, status, the service exflow names. nginx's configuration is written from
# this table and every curl's status is checked against it.
HTTP_VDIRS=(
    "/owa 302 owa"
    "/ecp 302 ecp"
    "/EWS/Exchange.asmx 401 ews"
    "/mapi 401 mapi"
    "/Microsoft-Server-ActiveSync 401 activesync"
    "/autodiscover/autodiscover.xml 302 autodiscover"
    "/rpc 401 rpc"
    "/OAB 401 oab"
    "/powershell 401 powershell"
)
MAIL_NAME=mail.example.test AUTODISCOVER_NAME=autodiscover.example.test
LONGPOLL_PORT=8081
# IIS's headers (the lab's nginx stands in for the mailbox's IIS); add_header in a location
# replaces the server's, so every location repeats them.
IIS_HEADERS='add_header X-Powered-By ASP.NET always; add_header X-FEServer EXF-MBX1 always;'
PAYLOAD_NGINX80="        server_tokens off;
"
for v in "${HTTP_VDIRS[@]}"; do
    read -r vpath vstatus _ <<<"$v"
    case $vstatus in
        30[12]) PAYLOAD_NGINX80+="        location = $vpath { $IIS_HEADERS return $vstatus https://$MAIL_NAME$vpath; }
" ;;
        401) PAYLOAD_NGINX80+="        location = $vpath { $IIS_HEADERS add_header WWW-Authenticate Negotiate always; add_header WWW-Authenticate NTLM always; return 401; }
" ;;
        *) PAYLOAD_NGINX80+="        location = $vpath { $IIS_HEADERS return $vstatus; }
" ;;
    esac
done
# ActiveSync's long polls (Ping): nginx hands them to a backend that answers after the delay
# the request names, as Exchange answers a Ping when its heartbeat interval ends.
PAYLOAD_NGINX443="        server_tokens off;
        location /Microsoft-Server-ActiveSync {
            proxy_pass http://127.0.0.1:$LONGPOLL_PORT;
            proxy_http_version 1.1;
            proxy_read_timeout 300s;
            proxy_buffering off;
        }
"
cat >"$WORK/longpoll-backend.py" <<'EOF'
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Ping(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        delay = float(parse_qs(urlparse(self.path).query).get("Delay", ["0"])[0])
        start = time.monotonic()
        time.sleep(delay)
        body = b'<?xml version="1.0"?><Ping><Status>1</Status></Ping>\n'   # 1: heartbeat expired
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"ping Delay={delay:g}: answered after {time.monotonic() - start:.1f} s", flush=True)

    def log_message(self, fmt, *args):
        pass


ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Ping).serve_forever()
EOF

# A stand-in for Cisco ASA `inspect esmtp` with its defaults, in the firewall namespace behind
# an nftables redirect of the mailbox's port 25: the 220 banner's text overwritten with
# asterisks, `STARTTLS` in the EHLO reply overwritten with `XXXXXXXA`, the verb of every
# command outside HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY overwritten with as many `X`,
# the message itself (after 354, up to the lone dot) passed as it is. Every rewrite keeps the
# length, as the ASA's do. The ASA forwards the connection; this fixture terminates it and
# opens its own to the mailbox (from the firewall's inside address), so its packets towards the
# client leave with the TTL a forwarded server packet would have (the listener's IP_TTL: the
# server's default less the one hop). It logs every rewrite: the log is the finding's truth.
cat >"$WORK/esmtp-inspect.py" <<'EOF'
import socket
import struct
import sys
import threading

HOST, PORT, TTL = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ALLOWED = {b"HELO", b"EHLO", b"MAIL", b"RCPT", b"DATA", b"RSET", b"NOOP", b"QUIT", b"VRFY"}
SO_ORIGINAL_DST = 80


def log(msg):
    print(msg, flush=True)


def lines(sock):
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            if buf:
                yield buf
            return
        buf += data
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            yield line + b"\r\n"


def session(cli, peer):
    raw = cli.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    (port,) = struct.unpack("!H", raw[2:4])
    addr = socket.inet_ntoa(raw[4:8])
    tag = f"{peer[0]}:{peer[1]} -> {addr}:{port}"
    try:
        srv = socket.create_connection((addr, port), timeout=10)
    except OSError as e:
        log(f"{tag}: cannot reach the server: {e!r}")
        cli.close()
        return
    srv.settimeout(None)
    log(f"{tag}: session")
    state = {"banner": True, "data": False}

    def server_to_client():
        try:
            for line in lines(srv):
                body = line[:-2] if line.endswith(b"\r\n") else line
                if state["banner"]:
                    if body[:3] == b"220":
                        masked = body[:4] + b"*" * (len(body) - 4)
                        log(f"{tag}: banner masked: {body!r} -> {masked!r}")
                        line = masked + line[len(body):]
                    if body[3:4] != b"-":
                        state["banner"] = False
                elif body[:3] == b"250" and body[4:].upper() == b"STARTTLS":
                    masked = body[:4] + b"XXXXXXXA"
                    log(f"{tag}: EHLO reply masked: {body!r} -> {masked!r}")
                    line = masked + line[len(body):]
                elif body[:3] == b"354":
                    state["data"] = True
                cli.sendall(line)
        except OSError:
            pass
        finally:
            try:
                cli.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def client_to_server():
        try:
            for line in lines(cli):
                if state["data"]:
                    if line == b".\r\n":
                        state["data"] = False
                    srv.sendall(line)
                    continue
                body = line[:-2] if line.endswith(b"\r\n") else line
                verb = body.split(b" ", 1)[0]
                if verb and verb.upper() not in ALLOWED:
                    masked = b"X" * len(verb) + body[len(verb):]
                    log(f"{tag}: command masked: {body!r} -> {masked!r}")
                    line = masked + line[len(body):]
                srv.sendall(line)
        except OSError:
            pass
        finally:
            try:
                srv.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    threads = [threading.Thread(target=f) for f in (server_to_client, client_to_server)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cli.close()
    srv.close()
    log(f"{tag}: closed")


ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)   # the SYN-ACK and every accepted socket
ls.bind((HOST, PORT))
ls.listen(16)
log(f"inspecting on {HOST}:{PORT}, TTL {TTL}, allowed {sorted(c.decode() for c in ALLOWED)}")
while True:
    c, p = ls.accept()
    threading.Thread(target=session, args=(c, p), daemon=True).start()
EOF

# A partner MTA that sends two commands outside the ASA's set: STARTTLS although the EHLO
# reply did not offer it, and ETRN. It prints each reply and exits 0 only if the server
# answered both with "500 5.5.2 Error: command not recognized": what Postfix says to a verb of
# X's. (Postfix answers STARTTLS with 220 and ETRN with a 4xx/5xx of its own, never that.)
cat >"$WORK/smtp-probe.py" <<'EOF'
import smtplib
import sys

s = smtplib.SMTP(local_hostname="mta.example.net", timeout=10)
code, msg = s.connect(sys.argv[1], int(sys.argv[2]))
print("banner:", code, msg.decode(errors="replace"), flush=True)
code, msg = s.ehlo()
print("EHLO:", code, msg.decode(errors="replace").replace("\n", " | "), flush=True)
replies = []
for cmd in ("STARTTLS", "ETRN example.net"):
    code, msg = s.docmd(cmd)
    text = msg.decode(errors="replace")
    replies.append(code == 500 and "command not recognized" in text)
    print(f"{cmd}: {code} {text}", flush=True)
s.quit()
sys.exit(0 if all(replies) else 3)
EOF

# Postfix on the mailbox: 25 and 587 on the mailbox's address, STARTTLS offered (the lab's
# self-signed certificate), example.test's one mailbox bob@ (delivered to Postfix's discard
# transport: accepted, logged, thrown away), every other recipient of example.test refused
# with 550 5.1.1, the sender $DEFERRED_SENDER deferred with 450 4.7.1 at MAIL FROM. The banner
# is Exchange's wording (this Postfix stands in for the Exchange mailbox). Its own configuration
# directory, queue and log under the work dir; master in the foreground, inside exf-server.
DEFERRED_SENDER=mallory@example.org UNKNOWN_RCPT=nobody@example.test
postfix_up() {
    local d=$WORK/postfix
    mkdir -p "$d/etc" "$d/queue" "$d/data"
    printf 'bob@example.test OK\n' >"$d/etc/vmailbox"
    printf '%s 450 4.7.1 Sender temporarily deferred by local policy\n' "$DEFERRED_SENDER" >"$d/etc/senders"
    cat >"$d/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/maillog
maillog_file_prefixes = $d
myhostname = $MAIL_NAME
mydomain = example.test
myorigin = example.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
relay_domains =
inet_interfaces = $M_ADDR
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname Microsoft ESMTP MAIL Service ready
smtpd_peername_lookup = no
biff = no
append_dot_mydomain = no
virtual_mailbox_domains = example.test
virtual_mailbox_maps = texthash:$d/etc/vmailbox
virtual_transport = discard
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_sender_restrictions = check_sender_access texthash:$d/etc/senders
smtpd_delay_reject = no
smtpd_tls_chain_files = $WORK/tls/key.pem, $WORK/tls/cert.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtp_dns_support_level = disabled
EOF
    cat >"$d/etc/master.cf" <<'EOF'
smtp       inet  n       -       n       -       -       smtpd
submission inet  n       -       n       -       -       smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
EOF
    chown postfix "$d/data"
    # Postfix prints its fatal errors on a terminal only (else to syslog): script(1) gives it one.
    nsx "$NS_S" script -qec "postfix -c $d/etc check" /dev/null >>"$LOG" 2>&1 || die "postfix check"
    start_server postfix postfix -c "$d/etc" start-fg
    wait_listen tcp 25; wait_listen tcp 587
}
# The mailbox's Postfix log lines matching a pattern (it writes them through postlogd, so wait
# a little for them).
postfix_log() { # extended regex
    local i
    for i in $(seq 1 30); do
        grep -E "$1" "$WORK/postfix/maillog" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Run a client with its output kept in a file (and in the log); its exit code must be WANT.
run_out() { # ns want seconds outfile cmd...
    local ns=$1 want=$2 secs=$3 out=$4 rc=0
    shift 4
    printf '%s\n' "--- client in $ns (want exit $want): $*" >>"$LOG"
    nsx "$ns" timeout -k 2 "$secs" "$@" </dev/null >"$out" 2>&1 || rc=$?
    cat "$out" >>"$LOG"
    [ "$rc" -eq "$want" ] || die "client '$*' in $ns exited $rc, the scenario expects $want: $(tail -n 5 "$out")"
    CLIENT_RC=$rc
}

# The truth files of the findings and of the services, written next to the steps.
findings_reset() {
    FINDINGS=$WORK/findings.jsonl SERVICES=$WORK/services.jsonl FW2_FINDINGS=$WORK/fw2-findings.jsonl
    : >"$FINDINGS"; : >"$SERVICES"; : >"$FW2_FINDINGS"
}
# One finding exflow must report: kind, the flow (port, src, dst as in the expected report's
# sides), who did it (firewall / server), MORE (a JSON object: count, code, sni, timeout
# bounds, ...), WHY (the rule, the configuration, the client's outcome, the server's log).
finding() { # kind port src dst by more why
    jq -cn --arg kind "$1" --argjson port "$2" --argjson src "$(side_json "$3")" \
        --argjson dst "$(side_json "$4")" --arg by "$5" --argjson more "$6" --arg why "$7" \
        '{kind: $kind, proto: "tcp", port: $port, src: $src, dst: $dst, by: $by} + $more + {why: $why}' \
        >>"$FINDINGS" || die "finding $1"
}
# A finding only the two-interface capture holds (a leg the single-interface capture does not
# see), marked "view": "fw2"; same arguments as finding.
fw2_finding() { # kind port src dst by more why
    FINDINGS=$FW2_FINDINGS finding "$1" "$2" "$3" "$4" "$5" "$(jq -c '. + {view: "fw2"}' <<<"$6")" "$7"
}
# One connection whose Exchange service the SNI or the HTTP request tells.
service_seen() { # port service evidence more why
    jq -cn --argjson port "$1" --arg s "$2" --arg e "$3" --argjson more "$4" --arg why "$5" \
        '{proto: "tcp", port: $port, service: $s, evidence: $e} + $more + {why: $why}' >>"$SERVICES" \
        || die "service $2"
}
# Capture stopped and checked: the truth files join the capture in samples/.
payload_finish() { # name
    local fw2=0
    [ ! -f "$WORK/$1.fw2.pcapng" ] || fw2=1
    capture_stop "$1"
    if [ "$fw2" -eq 1 ]; then
        # The two-interface capture's truth: this run's findings (the same steps, both views).
        jq -s '.' "$FINDINGS" "$FW2_FINDINGS" >"$OUT/$1.fw2.expect-findings.json" || die "$1: two-interface findings"
        chmod 644 "$OUT/$1.fw2.expect-findings.json"
    fi
    # ONLY_FW2=1 keeps the single-interface capture's truth files already in samples/.
    [ "$ONLY_FW2" -eq 0 ] || return 0
    jq -s '.' "$FINDINGS" >"$OUT/$1.expect-findings.json" || die "$1: findings"
    chmod 644 "$OUT/$1.expect-findings.json"
    if [ -s "$SERVICES" ]; then
        jq -s '.' "$SERVICES" >"$OUT/$1.expect-services.json" || die "$1: services"
        chmod 644 "$OUT/$1.expect-services.json"
    else
        rm -f "$OUT/$1.expect-services.json"
    fi
}
# The lab for issue 15: the Exchange site with Postfix; a dumpcap file for PAYLOAD_FW2's scenarios.
payload_lab() { # scenario-rules
    lab_up site payload
    case " ${PAYLOAD_FW2[*]} " in *" $SCENARIO "*) FW2=1 ;; *) FW2=0 ;; esac
    firewall "$1" "$SITE_ALLOW"
    findings_reset
}

MBX="mailbox=$SERVER"
# One HTTP request on 80 to a virtual directory: curl's status must be the configured one.
step_http_vdir() { # host path status service
    local got
    run_out "$NS_C" 0 20 "$WORK/curl.out" "${CURL[@]}" -w '%{http_code}' --resolve "$1:80:$SERVER" "http://$1$2"
    got=$(cat "$WORK/curl.out")
    [ "$got" = "$3" ] || die "http://$1$2 answered '$got', nginx is configured to answer $3"
    expect tcp "$SERVER" 80 SF "curl http://$1$2 (resolved to $SERVER) exit 0, status $3 as nginx's 'location = $2' says; allowed by $ALLOWED"
    report_expected http-client internet "$MBX" ok "curl http://$1$2 exit 0 (status $3); allowed by $ALLOWED"
    service_seen 80 "$4" http "$(jq -cn --arg h "$1" --arg p "$2" --argjson st "$3" \
        '{host: $h, path: $p, status: $st, established: true}')" "nginx's 'location = $2' answers $3; curl printed $got"
}
step_all_vdirs() {
    local v path status svc host
    for v in "${HTTP_VDIRS[@]}"; do
        read -r path status svc <<<"$v"
        host=$MAIL_NAME
        [ "$svc" != autodiscover ] || host=$AUTODISCOVER_NAME   # Outlook's Autodiscover on 80
        step_http_vdir "$host" "$path" "$status" "$svc"
    done
}
# HTTPS by name (curl --resolve: SNI and Host are the name): the handshake completes. With a
# third argument the step writes no report entry (the scenario writes the flow's verdict).
step_https_name() { # name path [noreport]
    client 0 20 "${CURL[@]}" -k --resolve "$1:443:$SERVER" "https://$1$2"
    expect tcp "$SERVER" 443 SF "curl -k https://$1$2 (SNI $1, resolved to $SERVER) exit 0; allowed by $ALLOWED"
    [ $# -gt 2 ] || report_expected https-client internet "$MBX" ok "curl -k https://$1$2 exit 0; allowed by $ALLOWED"
    local svc=null
    [ "$1" != "$AUTODISCOVER_NAME" ] || svc=autodiscover
    [ "$svc" = null ] || service_seen 443 "$svc" sni "$(jq -cn --arg s "$1" '{sni: $s, established: true}')" \
        "curl -k https://$1$2 exit 0: the ClientHello names $1"
}
# swaks with STARTTLS (--tls: TLS or fail) to 25 or 587; its transcript must show TLS started.
step_smtp_tls() { # port role
    run_out "$NS_C" 0 30 "$WORK/swaks.out" "${SWAKS_IN[@]}" --timeout 10 --tls --server "$SERVER" --port "$1"
    grep -q '^=== TLS started' "$WORK/swaks.out" || die "swaks --tls to $1: no 'TLS started' in its transcript"
    # swaks closes its TLS socket after the 221 without reading Postfix's close_notify, so its
    # kernel ends the connection with a RST (Zeek: RSTO, the originator aborted).
    expect tcp "$SERVER" "$1" RSTO "swaks --tls --port $1 (EHLO, STARTTLS, TLS, EHLO, MAIL, RCPT, DATA, QUIT) exit 0, its transcript says TLS started; swaks closes without reading Postfix's TLS close_notify: its own RST ends the connection; allowed by $ALLOWED" \
        '{"rst_from":"orig"}'
    report_expected "$2" internet "$MBX" ok "swaks --tls to $SERVER:$1 exit 0 (STARTTLS used, message accepted by Postfix)"
}
# ActiveSync-like long polls through nginx on 443, all at once; DELAYS the server's answer
# delays; each curl waits its delay plus 5 s (exit 0 answered, 28 timed out). KILLED: the delays
# the scenario's firewall must kill. Sets POLL_RC[delay].
declare -A POLL_RC
long_polls() { # "delays" "killed delays" conntrack-max (0: no check)
    local d pids=() n=0 url out
    for d in $1; do
        url="https://$MAIL_NAME/Microsoft-Server-ActiveSync?Cmd=Ping&Delay=$d"
        printf '%s\n' "--- long poll $d s: curl -X POST $url" >>"$LOG"
        ( rc=0
          ip netns exec "$NS_C" timeout -k 2 $((d + 15)) "${CURL[@]}" -k --resolve "$MAIL_NAME:443:$SERVER" \
              --max-time $((d + 5)) -X POST --data-binary '' "$url" >"$WORK/poll-$d.out" 2>&1 </dev/null || rc=$?
          echo "$rc" >"$WORK/poll-$d.rc" ) &
        pids+=($!)
        n=$((n + 1))
        sleep 0.3
    done
    if [ "$3" -gt 0 ]; then
        # The conntrack entries of the polls, read from the firewall's table: each established one
        # must carry the short timeout (the kernel's default is days).
        sleep 2
        out=$(nsx "$NS_F" conntrack -L -p tcp --dport 443 2>/dev/null | grep ESTABLISHED || true)
        printf '%s\n' "--- conntrack -L -p tcp --dport 443:" "$out" >>"$LOG"
        [ "$(grep -c . <<<"$out")" -ge "$n" ] || die "conntrack: $n established 443 entries expected: $out"
        CT_SEEN=$(awk '{print $3}' <<<"$out" | sort -n | tr '\n' ' ')
        for d in $CT_SEEN; do
            [ "$d" -le "$3" ] || die "conntrack: an established 443 entry has $d s left, the ct timeout is $3 s"
        done
        say "conntrack: established 443 entries with $CT_SEEN s left (ct timeout $3 s)"
    fi
    wait "${pids[@]}" || true
    for d in $1; do
        POLL_RC[$d]=$(cat "$WORK/poll-$d.rc")
        cat "$WORK/poll-$d.out" >>"$LOG"
        case " $2 " in
            *" $d "*) [ "${POLL_RC[$d]}" -eq 28 ] || die "long poll $d s: curl exit ${POLL_RC[$d]}, expected 28 (killed)" ;;
            *) [ "${POLL_RC[$d]}" -eq 0 ] || die "long poll $d s: curl exit ${POLL_RC[$d]}, expected 0 (answered)" ;;
        esac
    done
    grep -q 'ping Delay' "$WORK/longpoll.log" || die "the long-poll backend answered nothing"
    cat "$WORK/longpoll.log" >>"$LOG"
}

scenario_esmtp_inspection() {
    local n=esmtp-inspection pport=2525 redirect out c
    redirect="iifname \"$IF_FC\" ip daddr $SERVER tcp dport 25 redirect to :$pport"
    payload_lab ""
    FW2_REPORT_JQ=".unexpected += [{proto: \"tcp\", port: 25, src: \"$FW_S\", dst: \"$SERVER\", reason: \"unexpected-source\", why: \"the two-interface capture's inside leg: esmtp-inspect.py terminates each client's session and opens its own to the mailbox from the firewall's inside address $FW_S (3 sessions)\"}]"
    start_in "$NS_F" esmtp-inspect "$PY" -u "$WORK/esmtp-inspect.py" "$FW_C" "$pport" "$(srv_ttl)"
    wait_listen tcp "$pport" "$NS_F"
    nsx "$NS_F" nft -f - <<EOF || die "nft: the redirect to the inspection fixture"
table ip exfnat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        $redirect
    }
}
EOF
    nsx "$NS_F" nft list table ip exfnat >>"$LOG"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "ESMTP inspection (a stand-in for Cisco ASA inspect esmtp) in front of the mailbox's port 25; 587 untouched"
    local via="nft '$redirect' to esmtp-inspect.py (ASA inspect esmtp's defaults)"

    # A partner MTA that uses STARTTLS when offered and sends in plain text otherwise.
    run_out "$NS_C" 0 30 "$WORK/swaks.out" "${SWAKS_IN[@]}" --timeout 10 --tls-optional-strict --server "$SERVER" --port 25
    ! grep -q '^=== TLS started' "$WORK/swaks.out" || die "swaks --tls-optional-strict to 25 started TLS through the inspection"
    expect tcp "$SERVER" 25 SF "swaks --tls-optional-strict --port 25 exit 0 in plain text: $via masked the banner and STARTTLS; server packets leave the fixture with TTL $(srv_ttl)" \
        "{\"server_ttl\":$(srv_ttl)}"
    report_expected smtp-inbound internet "$MBX" ok "swaks --tls-optional-strict to $SERVER:25 exit 0: the message was accepted, in plain text (STARTTLS masked by the inspection)"
    # A sender that requires TLS: STARTTLS is not offered, swaks gives up (29: error in TLS).
    run_out "$NS_C" 29 30 "$WORK/swaks.out" "${SWAKS_IN[@]}" --timeout 10 --tls --server "$SERVER" --port 25
    expect tcp "$SERVER" 25 SF "swaks --tls --port 25 exit $CLIENT_RC (error in TLS transaction: STARTTLS not advertised, the inspection wrote XXXXXXXA over it); swaks quits cleanly" \
        "{\"server_ttl\":$(srv_ttl),\"client_exit\":$CLIENT_RC}"
    local tls_rc=$CLIENT_RC
    report_expected smtp-inbound internet "$MBX" ok "swaks --tls to $SERVER:25 exit $tls_rc: the session opened and closed cleanly, but no mail (TLS required, STARTTLS masked)"
    # A partner that sends commands outside the ASA's set: the server sees X's, answers 500.
    run_out "$NS_C" 0 30 "$WORK/probe.out" "$PY" "$WORK/smtp-probe.py" "$SERVER" 25
    expect tcp "$SERVER" 25 SF "smtp-probe.py (EHLO, STARTTLS, ETRN example.net, QUIT) exit 0: Postfix answered 500 (command not recognized) to both, it received XXXXXXXX and XXXX example.net" \
        "{\"server_ttl\":$(srv_ttl)}"
    report_expected smtp-inbound internet "$MBX" ok "smtp-probe.py to $SERVER:25 exit 0 (full dialogue, two commands masked)"
    # 587 is not inspected: STARTTLS offered and used.
    step_smtp_tls 587 smtp-submission
    payload_check_proxy
    finding smtp_banner_masked 25 internet "$MBX" firewall \
        "$(jq -cn --argjson c "$ESMTP_BANNERS" '{count: $c, sessions: $c}')" \
        "$via: every session's 220 banner text overwritten with asterisks (the fixture's log: $ESMTP_BANNERS banners masked); 587 is not inspected"
    finding starttls_stripped 25 internet "$MBX" firewall \
        "$(jq -cn --argjson c "$ESMTP_STARTTLS" --argjson rc "$tls_rc" \
            '{count: $c, masked_as: "XXXXXXXA", plain_text_deliveries: 1, tls_required_failed: 1, tls_required_exit: $rc}')" \
        "Postfix offers STARTTLS on 25 (smtpd_tls_security_level = may); $via wrote XXXXXXXA over it in $ESMTP_STARTTLS EHLO replies: swaks --tls-optional-strict delivered in plain text (exit 0), swaks --tls gave up (exit $tls_rc); on 587, not inspected, swaks --tls used TLS"
    finding smtp_commands_masked 25 internet "$MBX" firewall \
        '{"count": 1, "commands": ["STARTTLS", "ETRN"], "masked_as": ["XXXXXXXX", "XXXX"], "server_reply": 500}' \
        "$via overwrites verbs outside HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY: smtp-probe.py's STARTTLS and ETRN reached Postfix as XXXXXXXX and XXXX, answered 500 command not recognized (the fixture's log: $ESMTP_COMMANDS commands masked)"
    # The two-interface capture also holds the fixture's own connections to the mailbox, from
    # the firewall's inside address (an ASA forwards the client's connection; the fixture
    # terminates it and opens its own): the masked commands reach Postfix on them.
    fw2_finding smtp_commands_masked 25 internal "$MBX" firewall \
        '{"count": 1, "commands": ["STARTTLS", "ETRN"], "masked_as": ["XXXXXXXX", "XXXX"], "server_reply": 500}' \
        "on the firewall's inside leg, esmtp-inspect.py's own connection from $FW_S carries smtp-probe.py's STARTTLS and ETRN as XXXXXXXX and XXXX to Postfix, which answers 500 (the fixture's log: $ESMTP_COMMANDS commands masked)"
    payload_finish "$n"
}
# The inspection fixture's log must show what its configuration says it does, session by session.
payload_check_proxy() {
    local f=$WORK/esmtp-inspect.log
    ESMTP_BANNERS=$(grep -c 'banner masked' "$f" || true)
    ESMTP_STARTTLS=$(grep -c "EHLO reply masked: b'250-STARTTLS'" "$f" || true)
    ESMTP_COMMANDS=$(grep -c 'command masked' "$f" || true)
    cat "$f" >>"$LOG"
    [ "$ESMTP_BANNERS" -eq 3 ] || die "esmtp-inspect.py masked $ESMTP_BANNERS banners, 3 sessions went through it"
    [ "$ESMTP_STARTTLS" -eq 3 ] || die "esmtp-inspect.py masked STARTTLS $ESMTP_STARTTLS times, 3 EHLO replies went through it"
    grep -q "command masked: b'STARTTLS' -> b'XXXXXXXX'" "$f" && grep -q "command masked: b'ETRN example.net' -> b'XXXX example.net'" "$f" \
        && [ "$ESMTP_COMMANDS" -eq 2 ] || die "esmtp-inspect.py: not the two masked commands the probe sent"
}

scenario_smtp_refusals() {
    local n=smtp-refusals line550 line450 text
    payload_lab ""
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "Postfix refuses a recipient (550) and defers a sender (450)"
    # A recipient of example.test Postfix does not know: 550 to RCPT; swaks 24 (no RCPT accepted).
    run_out "$NS_C" 24 30 "$WORK/swaks.out" swaks --from alice@example.net --to "$UNKNOWN_RCPT" --helo mta.example.net \
        --header 'Subject: exflow sample' --body 'hello' --timeout 10 --server "$SERVER" --port 25
    line550=$(postfix_log "NOQUEUE: reject: RCPT from .*: 550 .*<$UNKNOWN_RCPT>") || die "no 550 in Postfix's log"
    text=$(sed -E 's/.*\]: (550 [^;]*);.*/\1/' <<<"$line550")
    expect tcp "$SERVER" 25 SF "swaks --to $UNKNOWN_RCPT exit $CLIENT_RC (no RCPT accepted), then QUIT; Postfix: $line550" \
        "{\"client_exit\":$CLIENT_RC}"
    report_expected smtp-inbound internet "$MBX" flaky "swaks --to $UNKNOWN_RCPT exit $CLIENT_RC: the session opened and closed cleanly; Postfix refused the recipient ($text); the server refused the mail of some sessions but not all: flaky (issue 15: a mail flow whose mail was refused is not ok)"
    finding smtp_rejected 25 internet "$MBX" server \
        "$(jq -cn --arg t "${text#550 }" --argjson rc "$CLIENT_RC" '{count: 1, code: 550, command: "RCPT", text: $t, client_exit: $rc}')" \
        "virtual_mailbox_maps lists only bob@example.test; Postfix's log: $line550"
    # A sender Postfix defers (check_sender_access, smtpd_delay_reject = no): 450 to MAIL; swaks 23.
    run_out "$NS_C" 23 30 "$WORK/swaks.out" swaks --from "$DEFERRED_SENDER" --to bob@example.test --helo mta.example.org \
        --header 'Subject: exflow sample' --body 'hello' --timeout 10 --server "$SERVER" --port 25
    line450=$(postfix_log "NOQUEUE: reject: MAIL from .*: 450 .*<$DEFERRED_SENDER>") || die "no 450 in Postfix's log"
    text=$(sed -E 's/.*\]: (450 [^;]*);.*/\1/' <<<"$line450")
    expect tcp "$SERVER" 25 SF "swaks --from $DEFERRED_SENDER exit $CLIENT_RC (error in MAIL), then QUIT; Postfix: $line450" \
        "{\"client_exit\":$CLIENT_RC}"
    report_expected smtp-inbound internet "$MBX" flaky "swaks --from $DEFERRED_SENDER exit $CLIENT_RC: the session opened and closed cleanly; Postfix deferred the sender ($text); the server refused the mail of some sessions but not all: flaky (issue 15: a mail flow whose mail was refused is not ok)"
    finding smtp_rejected 25 internet "$MBX" server \
        "$(jq -cn --arg t "${text#450 }" --argjson rc "$CLIENT_RC" '{count: 1, code: 450, command: "MAIL", text: $t, client_exit: $rc}')" \
        "check_sender_access: '$DEFERRED_SENDER 450 4.7.1 ...'; Postfix's log: $line450"
    # And one message Postfix accepts (the row stays flaky: the two above were refused).
    SMTP_INBOUND_VERDICT=flaky step_smtp_inbound
    postfix_log "to=<bob@example.test>.*status=sent" >/dev/null || die "Postfix's log has no delivery to bob@example.test"
    payload_finish "$n"
}

# Idle timeouts: the firewall's conntrack forgets an established 443 connection after
# IDLE_TIMEOUT s of silence (an nftables ct timeout object, set on new 443 connections), and
# with nf_conntrack_tcp_loose = 0 a packet of a forgotten connection is invalid: dropped
# silently (idle-timeout-drop) or answered with a TCP reset to its sender (idle-timeout-reset).
# In the drop variant the client then pings again on a new connection (POLL_REISSUE s), as
# ActiveSync does when a Ping times out: the evidence exflow reads as "reconnected".
IDLE_TIMEOUT=20 POLLS_SURVIVE="8 12" POLLS_KILLED="30 40" POLL_REISSUE=1
scenario_idle_timeout_drop() { idle_timeout idle-timeout-drop drop; }
scenario_idle_timeout_reset() { idle_timeout idle-timeout-reset "reject with tcp reset"; }
idle_timeout() { # name invalid-action
    local n=$1 action=$2 d how reconnected=null url again=
    local settimeout="iifname \"$IF_FC\" ip daddr $SERVER tcp dport 443 ct state new ct timeout set \"exf-idle443\""
    local invalid="ct state invalid $action"
    FW_OBJECTS="    ct timeout exf-idle443 {
        protocol tcp
        l3proto ip
        policy = { established: $IDLE_TIMEOUT }
    }
" payload_lab "        $invalid
        $settimeout"
    nsx "$NS_F" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "the firewall forgets established 443 connections after $IDLE_TIMEOUT s of silence; their late packets: $action"
    step_smtp_inbound
    long_polls "$POLLS_SURVIVE $POLLS_KILLED" "$POLLS_KILLED" "$IDLE_TIMEOUT"
    for d in $POLLS_SURVIVE; do
        expect tcp "$SERVER" 443 SF "long poll (POST /Microsoft-Server-ActiveSync?Cmd=Ping&Delay=$d) answered after $d s < the ${IDLE_TIMEOUT}-s ct timeout: curl exit 0"
    done
    if [ "$action" = drop ]; then
        how=dropped
        for d in $POLLS_KILLED; do
            expect tcp "$SERVER" 443 S2 "long poll Delay=$d: the answer after $d s finds no conntrack entry (ct timeout $IDLE_TIMEOUT s, tcp_loose 0): '$invalid' drops it and everything after; curl gives up at $((d + 5)) s (exit 28), its FIN is dropped too and never answered" \
                '{"client_exit":28}'
        done
        report_expected https-client internet "$MBX" ok "all long polls established and none reset: the ${IDLE_TIMEOUT}-s idle timeout drops the late answers silently (curl exit 28 for Delay $POLLS_KILLED), which only the idle_timeout_kill finding tells"
        # The client pings again on a new connection, as ActiveSync does after a Ping timed out.
        # long_polls waited for every curl, so this connection's SYN follows each killed poll's
        # last packet of its own (curl's FIN at Delay+5 s; the kernel may still retransmit it),
        # within seconds: every killed poll is followed by a new connection from the same client
        # to $SERVER:443 begun after its quiet gap, well inside the 10 minutes exflow reads as a
        # reconnection. Delay $POLL_REISSUE leaves it no quiet gap (under 5 s).
        url="https://$MAIL_NAME/Microsoft-Server-ActiveSync?Cmd=Ping&Delay=$POLL_REISSUE"
        run_out "$NS_C" 0 20 "$WORK/poll-reissue.out" "${CURL[@]}" -k --resolve "$MAIL_NAME:443:$SERVER" \
            --max-time 10 -X POST --data-binary '' "$url"
        expect tcp "$SERVER" 443 SF "the client's Ping again on a new connection after the killed polls gave up (curl exit 28): Delay=$POLL_REISSUE answered, curl exit 0"
        report_expected https-client internet "$MBX" ok "the client's new Ping after the killed polls (curl -X POST $url) exit 0"
        reconnected=$(wc -w <<<"$POLLS_KILLED")
        again="; after the killed polls gave up the client pinged again on a new connection (curl exit 0): each of the $reconnected killed polls was followed by a new connection"
    else
        how=reset
        for d in $POLLS_KILLED; do
            expect tcp "$SERVER" 443 RSTR "long poll Delay=$d: the answer after $d s finds no conntrack entry: '$invalid' resets the server; curl gives up at $((d + 5)) s (exit 28) and its own closing packets are answered with a RST from the firewall claiming to be $SERVER (TTL $(fw_ttl) vs the server's $(srv_ttl))" \
                "{\"rst_from\":\"resp\",\"rst_ttl\":$(fw_ttl),\"server_ttl\":$(srv_ttl),\"client_exit\":28}"
        done
        report_expected https-client internet "$MBX" cut "long polls Delay $POLLS_KILLED (longer than the ${IDLE_TIMEOUT}-s ct timeout) are reset by the firewall ('$invalid', RST TTL $(fw_ttl) vs $(srv_ttl)) after the client's timeout; Delay $POLLS_SURVIVE answered"
        died_at https-client internet "$MBX" 443 firewall "the firewall's conntrack forgot the idle connections (ct timeout $IDLE_TIMEOUT s) and '$invalid' reset the late packets: the connections were cut inside the firewall"
    fi
    local min max
    min=$(tr ' ' '\n' <<<"$POLLS_SURVIVE" | sort -n | tail -n 1)
    max=$(tr ' ' '\n' <<<"$POLLS_KILLED" | sort -n | head -n 1)
    finding idle_timeout_kill 443 internet "$MBX" firewall \
        "$(jq -cn --argjson t "$IDLE_TIMEOUT" --argjson lo "$min" --argjson hi "$max" --arg how "$how" \
            --arg s "$POLLS_SURVIVE" --arg k "$POLLS_KILLED" --arg ct "$CT_SEEN" --argjson r "$reconnected" \
            '{count: ($k | split(" ") | length), timeout_s: $t, timeout_s_min: $lo, timeout_s_max: $hi,
              after_gap: $how, survived_gaps_s: ($s | split(" ") | map(tonumber)),
              killed_gaps_s: ($k | split(" ") | map(tonumber)),
              conntrack_seen_s: ($ct | split(" ") | map(select(. != "") | tonumber))}
             + if $r == null then {} else {reconnected: $r} end')" \
        "nft ct timeout exf-idle443 { policy = { established: $IDLE_TIMEOUT } } on new 443 connections, '$invalid', nf_conntrack_tcp_loose 0; conntrack -L showed the polls' entries with $CT_SEEN s left; polls answered after $POLLS_SURVIVE s survived (curl 0), after $POLLS_KILLED s were killed (curl 28): the timeout lies in ($min, $max) s${again:-}"
    payload_finish "$n"
}

scenario_tls_by_name() {
    local n=tls-by-name i count
    local rule="-i $IF_FC -d $SERVER -p tcp --dport 443 -m string --string $AUTODISCOVER_NAME --algo bm -j REJECT --reject-with tcp-reset"
    payload_lab ""
    # shellcheck disable=SC2086
    nsx "$NS_F" iptables -A FORWARD $rule || die "iptables string match"
    nsx "$NS_F" iptables -S FORWARD >>"$LOG"
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "the firewall resets TLS connections whose ClientHello names $AUTODISCOVER_NAME; $MAIL_NAME passes; HTTP on 80 to every virtual directory"
    step_https_name "$MAIL_NAME" /owa/ noreport
    for i in 1 2; do
        # curl exit 35: the TLS handshake failed (connection reset by peer after the ClientHello).
        client 35 20 "${CURL[@]}" -k --resolve "$AUTODISCOVER_NAME:443:$SERVER" "https://$AUTODISCOVER_NAME/autodiscover/autodiscover.xml"
        expect tcp "$SERVER" 443 RSTR "attempt $i: curl -k https://$AUTODISCOVER_NAME/autodiscover/autodiscover.xml exit $CLIENT_RC (TLS handshake failed): iptables '$rule' drops the ClientHello and answers it with a RST claiming to be $SERVER (TTL $(fw_ttl) vs the server's $(srv_ttl))" \
            "{\"rst_from\":\"resp\",\"rst_ttl\":$(fw_ttl),\"server_ttl\":$(srv_ttl),\"client_exit\":$CLIENT_RC}"
        service_seen 443 autodiscover sni "$(jq -cn --arg s "$AUTODISCOVER_NAME" '{sni: $s, established: false}')" \
            "curl -k https://$AUTODISCOVER_NAME/... exit $CLIENT_RC: the ClientHello names $AUTODISCOVER_NAME, reset by the firewall"
    done
    report_expected https-client internet "$MBX" cut "the TCP connections to 443 all open; the two whose ClientHello names $AUTODISCOVER_NAME are reset by iptables '$rule' (curl exit 35, RST TTL $(fw_ttl) vs $(srv_ttl)); $MAIL_NAME passes (curl exit 0)"
    died_at https-client internet "$MBX" 443 firewall "iptables '$rule' in the firewall's FORWARD chain drops the ClientHellos naming $AUTODISCOVER_NAME and answers them with a RST of its own: the connections were cut inside the firewall"
    step_all_vdirs
    count=$(nsx "$NS_F" iptables -L FORWARD -v -x -n | awk '/STRING match/ {print $1}')
    [ "$count" = 2 ] || die "the string match counted '$count' packets, the two ClientHellos expected"
    finding tls_blocked_by_name 443 internet "$MBX" firewall \
        "$(jq -cn --arg s "$AUTODISCOVER_NAME" --arg ok "$MAIL_NAME" '{count: 2, sni: $s, passing_sni: [$ok]}')" \
        "iptables '$rule' (its counter: $count packets, the two ClientHellos); curl to $AUTODISCOVER_NAME exit 35 twice, to $MAIL_NAME exit 0"
    finding tls_handshake_failed 443 internet "$MBX" firewall \
        "$(jq -cn --arg s "$AUTODISCOVER_NAME" '{count: 2, sni: $s, optional: true}')" \
        "the same two connections: the handshake never completed (optional: true, a report may name them under tls_blocked_by_name only)"
    payload_finish "$n"
}

# TLS handshakes that fail with no firewall involved (the rules only allow 443): the mailbox's
# nginx first allows TLS 1.2 and 1.3, and a client that does not trust its self-signed
# certificate (curl without -k, TLS 1.2 at most, so that its alert travels in the clear) aborts
# the handshake after the server's Certificate with a fatal unknown_ca alert, while the same
# curl with -k completes it; then nginx is reloaded with `ssl_protocols TLSv1.3` only, and two
# clients limited to TLS 1.2 (curl --tls-max 1.2, openssl s_client -tls1_2) get the server's
# fatal protocol_version alert in answer to their ClientHello. The truth: the clients' exit
# codes and nginx's error log (level info: one line per failed handshake).
scenario_tls_handshake_failed() {
    local n=tls-handshake-failed url="https://$MAIL_NAME/owa/" log=$WORK/nginx-error.log i
    local ca_lines proto_lines b_rc a_rc=() line
    PAYLOAD_NGINX443="$PAYLOAD_NGINX443        ssl_protocols TLSv1.2 TLSv1.3;
" payload_lab ""
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "nginx on 443 allows TLS 1.2 and 1.3 (a client rejects its certificate), then TLS 1.3 only (clients limited to TLS 1.2 are refused); no firewall rule is involved"
    # The contrast: TLS 1.2, the certificate not checked (-k): the handshake completes.
    client 0 20 "${CURL[@]}" -k --tls-max 1.2 --resolve "$MAIL_NAME:443:$SERVER" "$url"
    expect tcp "$SERVER" 443 SF "curl -k --tls-max 1.2 $url (SNI $MAIL_NAME) exit 0: the TLS 1.2 handshake completed; allowed by $ALLOWED"
    # The client rejects the certificate: curl 60 (peer certificate cannot be authenticated).
    client 60 20 "${CURL[@]}" --tls-max 1.2 --resolve "$MAIL_NAME:443:$SERVER" "$url"
    b_rc=$CLIENT_RC
    ca_lines=$(grep -c 'alert unknown ca' "$log" || true)
    [ "$ca_lines" -eq 1 ] || die "nginx's error log has $ca_lines 'alert unknown ca' lines, one expected: $(cat "$log")"
    line=$(grep -m1 'alert unknown ca' "$log" | sed -E 's/^[0-9\/]+ [0-9:]+ //')
    # OpenSSL rejects the certificate as it reads the Certificate message: the rest of the
    # server's flight (ServerKeyExchange, ServerHelloDone) is still unread in the client's
    # socket when curl closes it, so its kernel ends the connection with a RST (RSTO).
    expect tcp "$SERVER" 443 RSTO "curl --tls-max 1.2 $url exit $b_rc (the self-signed certificate is not trusted): after the server's Certificate the client sends a fatal unknown_ca alert and closes with the rest of the server's flight unread, so its kernel resets; nginx: $line" \
        "{\"client_exit\":$b_rc,\"rst_from\":\"orig\"}"
    finding tls_handshake_failed 443 internet "$MBX" client \
        "$(jq -cn --arg s "$MAIL_NAME" --argjson rc "$b_rc" \
            '{count: 1, sni: $s, alert: {from: "client", level: 2, description: 48, name: "unknown_ca"}, client_exit: $rc}')" \
        "curl --tls-max 1.2 without -k exit $b_rc: it does not trust the lab's self-signed certificate and aborts the TLS 1.2 handshake with a fatal unknown_ca alert (48) after the server's hello; nginx's error log: $line; the same curl with -k completed the handshake"
    # nginx reloaded with TLS 1.3 only (the listening socket stays; new workers take over).
    NGINX_EXTRA443="$PAYLOAD_NGINX443        ssl_protocols TLSv1.3;
"
    nginx_conf "${M_ADDRS[@]}"
    nsx "$NS_S" nginx -p "$WORK" -e "$log" -c "$WORK/nginx.conf" -s reload >>"$LOG" 2>&1 || die "nginx -s reload"
    for i in $(seq 1 50); do
        grep -q 'gracefully shutting down' "$log" && break
        sleep 0.1
    done
    grep -q 'gracefully shutting down' "$log" || die "nginx did not reload: $(tail -n 5 "$log")"
    sleep 0.5
    # Clients limited to TLS 1.2: nginx answers the ClientHello with a fatal protocol_version
    # alert; curl 35 (TLS connect error), openssl s_client 1.
    client 35 20 "${CURL[@]}" -k --tls-max 1.2 --resolve "$MAIL_NAME:443:$SERVER" "$url"
    a_rc+=("$CLIENT_RC")
    expect tcp "$SERVER" 443 SF "curl -k --tls-max 1.2 $url exit $CLIENT_RC after nginx's reload with 'ssl_protocols TLSv1.3': the server answers the ClientHello with a fatal protocol_version alert and closes" \
        "{\"client_exit\":$CLIENT_RC}"
    run_in "$NS_C" 1 20 openssl s_client -tls1_2 -connect "$SERVER:443" -servername "$MAIL_NAME"
    a_rc+=("$CLIENT_RC")
    expect tcp "$SERVER" 443 SF "openssl s_client -tls1_2 -servername $MAIL_NAME exit $CLIENT_RC after nginx's reload with 'ssl_protocols TLSv1.3': the server answers the ClientHello with a fatal protocol_version alert and closes" \
        "{\"client_exit\":$CLIENT_RC}"
    proto_lines=$(grep -c 'unsupported protocol' "$log" || true)
    [ "$proto_lines" -eq 2 ] || die "nginx's error log has $proto_lines 'unsupported protocol' lines, two expected: $(cat "$log")"
    line=$(grep -m1 'unsupported protocol' "$log" | sed -E 's/^[0-9\/]+ [0-9:]+ //')
    finding tls_handshake_failed 443 internet "$MBX" server \
        "$(jq -cn --arg s "$MAIL_NAME" --argjson rc "$(printf '%s\n' "${a_rc[@]}" | jq -s .)" \
            '{count: 2, sni: $s, alert: {from: "server", level: 2, description: 70, name: "protocol_version"}, client_exits: $rc}')" \
        "nginx reloaded with 'ssl_protocols TLSv1.3'; curl --tls-max 1.2 exit ${a_rc[0]} and openssl s_client -tls1_2 exit ${a_rc[1]}: the server refused their TLS 1.2 ClientHellos with a fatal protocol_version alert (70); nginx's error log, twice: $line"
    report_expected https-client internet "$MBX" ok "every 443 connection opened and closed cleanly through the firewall ($ALLOWED): the TLS failures are the endpoints' (curl -k --tls-max 1.2 exit 0; curl without -k exit $b_rc, unknown_ca; after nginx's reload with TLS 1.3 only, curl exit ${a_rc[0]} and openssl s_client exit ${a_rc[1]}, protocol_version); the findings tell them"
    payload_finish "$n"
}

scenario_payload_healthy() {
    local n=payload-healthy d v path status svc host
    payload_lab ""
    capture_start "$n"
    site_mailbox_v4
    site_write "$n" "SMTP with STARTTLS on 25 and 587, HTTPS by two names, HTTP to virtual directories, long polls under every timeout: no finding"
    step_smtp_tls 25 smtp-inbound
    step_smtp_tls 587 smtp-submission
    step_https_name "$MAIL_NAME" /owa/
    step_https_name "$AUTODISCOVER_NAME" /autodiscover/autodiscover.xml
    for v in "${HTTP_VDIRS[@]}"; do
        read -r path status svc <<<"$v"
        case $svc in owa | autodiscover | activesync) ;; *) continue ;; esac
        host=$MAIL_NAME
        [ "$svc" != autodiscover ] || host=$AUTODISCOVER_NAME
        step_http_vdir "$host" "$path" "$status" "$svc"
    done
    long_polls "5 10" "" 0
    for d in 5 10; do
        expect tcp "$SERVER" 443 SF "long poll Delay=$d answered (curl exit 0); the firewall keeps established connections for the kernel's default (days)"
    done
    report_expected https-client internet "$MBX" ok "long polls Delay 5 and 10 answered (curl exit 0)"
    payload_finish "$n"
}

# IMAP and POP3 with TLS, no firewall rule involved (the rules allow 110, 143, 993, 995 and
# the site's ports): dovecot offers STARTTLS on 143 and STLS on 110 with the lab's self-signed
# certificate, and serves IMAPS 993 and POP3S 995. curl logs in and fetches the message over
# each (-k, --ssl-reqd: STARTTLS or fail); one more curl to 143 that does not trust the
# certificate (no -k; TLS 1.2 at most, so that its alert travels in the clear) aborts the
# handshake after STARTTLS with a fatal unknown_ca alert (curl exit 60). The truth: the
# clients' exit codes and dovecot's log (a "TLS" login per good session, the alert's line).
scenario_mail_starttls() {
    local n=mail-starttls log=$WORK/dovecot/dovecot.log allow u rc line logins scheme port path role i
    allow="        iifname \"$IF_FC\" ip daddr $SERVER tcp dport { 110, 143, 993, 995 } ct state new accept"
    lab_up site payload
    FW2=0
    dovecot_up tls
    firewall "" "$SITE_ALLOW
$allow"
    findings_reset
    capture_start "$n"
    site_mailbox_v4
    SITE_SERVICES=("imap4 = true" "pop3 = true")
    site_write "$n" "dovecot: IMAP 143 and POP3 110 with STARTTLS (STLS), IMAPS 993, POP3S 995; one client rejects the self-signed certificate after STARTTLS; no firewall rule is involved"
    local auth=(-u "$DOVECOT_USER:$DOVECOT_PASS") via="allowed by '$allow'"
    # STARTTLS (STLS) and TLS from the first byte, each logging in and fetching message 1.
    for u in "imap 143 INBOX/;UID=1 imap4" "pop3 110 1 pop3" "imaps 993 INBOX/;UID=1 imap4s" "pop3s 995 1 pop3s"; do
        read -r scheme port path role <<<"$u"
        local url="$scheme://$MAIL_NAME:$port/$path" how=
        case $scheme in imap | pop3) how="--ssl-reqd (STARTTLS or fail)" ;; esac
        client 0 20 "${CURL[@]}" -k ${how:+--ssl-reqd} "${auth[@]}" --resolve "$MAIL_NAME:$port:$SERVER" "$url"
        # curl closes its TLS socket after LOGOUT (QUIT) without reading the rest of
        # dovecot's answer (its TLS close_notify): its own kernel resets (RSTO), as swaks's.
        expect tcp "$SERVER" "$port" RSTO "curl -k ${how:+$how }$url (SNI $MAIL_NAME) exit 0: logged in over TLS and fetched message 1; curl closes without reading dovecot's last TLS records, its own RST ends the connection; $via" \
            '{"rst_from":"orig"}'
        report_expected "$role" internet "$MBX" ok "curl -k ${how:+$how }$url exit 0 (login and fetch over TLS); $via"
    done
    logins=$(grep -c 'Login: user=<'"$DOVECOT_USER"'>.*TLS' "$log" || true)
    [ "$logins" -eq 4 ] || die "dovecot logged $logins logins over TLS, 4 expected: $(cat "$log")"
    # The certificate not trusted after STARTTLS: curl 60, a fatal unknown_ca alert (48).
    local url="imap://$MAIL_NAME:143/INBOX/;UID=1"
    client 60 20 "${CURL[@]}" --ssl-reqd --tls-max 1.2 "${auth[@]}" --resolve "$MAIL_NAME:143:$SERVER" "$url"
    rc=$CLIENT_RC
    for i in $(seq 1 30); do
        grep -q 'alert unknown ca' "$log" && break
        sleep 0.1
    done
    [ "$(grep -c 'alert unknown ca' "$log" || true)" -eq 1 ] || die "dovecot's log has no single 'alert unknown ca' line: $(cat "$log")"
    line=$(grep -m1 'alert unknown ca' "$log" | sed -E 's/^[A-Za-z]+ [0-9]+ [0-9:]+ //')
    expect tcp "$SERVER" 143 RSTO "curl --ssl-reqd --tls-max 1.2 $url exit $rc (the self-signed certificate is not trusted): after STARTTLS and the server's Certificate the client sends a fatal unknown_ca alert and closes with the rest of the server's flight unread, so its kernel resets; dovecot: $line" \
        "{\"client_exit\":$rc,\"rst_from\":\"orig\"}"
    report_expected imap4 internet "$MBX" ok "curl --ssl-reqd --tls-max 1.2 $url exit $rc: the connection opened and closed through the firewall; the TLS failure after STARTTLS is the client's (unknown_ca), the finding tells it"
    finding tls_handshake_failed 143 internet "$MBX" client \
        "$(jq -cn --arg s "$MAIL_NAME" --argjson rc "$rc" \
            '{count: 1, sni: $s, alert: {from: "client", level: 2, description: 48, name: "unknown_ca"}, client_exit: $rc}')" \
        "curl imap:// --ssl-reqd --tls-max 1.2 without -k exit $rc: after dovecot accepted STARTTLS it does not trust the lab's self-signed certificate and aborts the TLS 1.2 handshake with a fatal unknown_ca alert (48); dovecot's log: $line; the same curl with -k logged in over TLS"
    payload_finish "$n"
}

# --------------------------------------------------------------------------- main
start=$(date +%s)
for s in "${SCENARIOS[@]}"; do
    say "$s"
    SCENARIO=$s
    "scenario_${s//-/_}"
done
lab_down
say "done in $(( $(date +%s) - start ))s: ${SCENARIOS[*]} -> $OUT"
