#!/usr/bin/env bash
# A 60 s `exflow live` run with interim reports every 5 s under a replayed SYN flood to random
# destinations and ports (documentation addresses only: sources 198.51.100.0/24, destinations
# 192.0.2.0/24 and 203.0.113.0/24), in two namespaces joined by a veth; nothing is routed.
# Prints exflow's wall time (it must end at ~60 s: interim reports must not stall capture),
# peak RSS, the report lines, the drop counters and the final report's size (issue 18).
#
#   sudo benches/live-flood.sh target/release/exflow        # PPS=150000 by default
#
# Needs root, tcpreplay, python3. Bounded: tcpreplay 56 s (timeout 70 s), exflow --duration 60s.
set -u
BIN=${1:?exflow binary}; CAP=${2:-}; PPS=${PPS:-150000}
ip netns del exlf-a 2>/dev/null; ip netns del exlf-b 2>/dev/null
ip netns add exlf-a; ip netns add exlf-b
ip link add exlf-va netns exlf-a type veth peer name exlf-vb netns exlf-b
ip -n exlf-a addr add 192.0.2.201/24 dev exlf-va; ip -n exlf-b addr add 192.0.2.202/24 dev exlf-vb
ip -n exlf-a link set exlf-va up; ip -n exlf-b link set exlf-vb up
sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 >/dev/null 2>&1 || true
D=$(mktemp -d)
if [ -z "$CAP" ]; then
    CAP=$D/flood.pcap
    python3 - 1000000 "$CAP" <<'PY'
# SYN flood, documentation addresses only: random sources in 198.51.100.0/24, random
# destinations in 203.0.113.0/24 and 192.0.2.0/24, random destination ports.
import random, struct, sys
n=int(sys.argv[1]); out=sys.argv[2]; random.seed(7)
def csum(b):
    if len(b)%2: b+=b'\0'
    s=sum(struct.unpack('!%dH'%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
f=open(out,'wb'); f.write(struct.pack('<IHHiIII',0xa1b2c3d4,2,4,0,0,65535,1))
for i in range(n):
    src=bytes([198,51,100,random.randint(1,254)])
    dst=bytes([203,0,113,random.randint(1,254)]) if i%2 else bytes([192,0,2,random.randint(1,254)])
    sp=random.randint(1024,65535); dp=random.randint(1,65535)
    tcp=struct.pack('!HHIIBBHHH',sp,dp,random.getrandbits(32),0,5<<4,0x02,64240,0,0)
    ip=struct.pack('!BBHHHBBH4s4s',0x45,0,40,i&0xffff,0,64,6,0,src,dst)
    ip=ip[:10]+struct.pack('!H',csum(ip))+ip[12:]
    eth=b'\x02\0\0\0\0\x02'+b'\x02\0\0\0\0\x01'+b'\x08\x00'
    fr=eth+ip+tcp
    t=1700000000+i//100000; us=(i%100000)*10
    f.write(struct.pack('<IIII',t,us,len(fr),len(fr))+fr)
f.close()
PY
fi
ip netns exec exlf-b /usr/bin/time -v "$BIN" live -i exlf-vb --duration 60s --interval 5s --format json \
   >"$D/out.jsonl" 2>"$D/err" &
EP=$!
sleep 2
start=$(date +%s.%N)
timeout 70 ip netns exec exlf-a tcpreplay -q -i exlf-va --pps "$PPS" --duration 56 --loop 0 "$CAP" >"$D/replay" 2>&1
wait $EP; rc=$?
end=$(date +%s.%N)
echo "exflow rc=$rc"
grep -E "Elapsed|Maximum resident" "$D/err"
grep -c . "$D/out.jsonl" | sed 's/^/report lines: /'
tail -1 "$D/out.jsonl" | python3 -c 'import json,sys; r=json.load(sys.stdin); c=r["capture"]; print("packets",c.get("packets"),"kernel_drops",c.get("kernel_drops"),"queue_drops",c.get("queue_drops"), "interim", r.get("interim")); print([w for w in r.get("warnings",[])][:5]); print("final report bytes", len(json.dumps(r)))'
grep -E "Actual|Rated|Flows" "$D/replay" | head -3
grep -v "Command being\|^\s" "$D/err" | head -5
ip netns del exlf-a; ip netns del exlf-b
rm -rf "$D"
