#!/usr/bin/env python3
"""Sanity-check a sample capture against its expect file (stdlib only).

    check-capture.py CAPTURE.pcap [EXPECT.jsonl]   # compare; exit 1 on any mismatch
    check-capture.py --dump CAPTURE.pcap            # print the connections as JSON lines

This is the lab's own cross-check, used by make-samples.sh right after each capture so
that a capture whose traffic differs from the script's intent fails loudly. It is a
small re-statement of Zeek's TCP endpoint state machine, `conn_state` and `history`
rules (see ../../shared/ZEEK-CONN.md), not a reference: Zeek's own answers are in
../../shared/captures/expected/. It reads classic pcap (Ethernet, 802.1Q, Linux SLL and
SLL2, raw IP; mirror feeds in VXLAN, GRE and ERSPAN II/III are decapsulated), IPv4 and IPv6 (hop-by-hop, routing and destination-options headers
skipped), ICMP and ICMPv6 errors, which is what make-samples.sh writes. Not modelled:
content gaps (G), bad checksums (C), Zeek's direction flips (^), UDP history, IP
fragments. Against Zeek's baselines in ../../shared/captures/ it agreed on conn_state and
history for 76 of 125 rows when it read IPv4 only; the rest are IPv6, PPPoE or radiotap
frames, flips, gaps, half-duplex captures or a self-connection.

Expect lines are matched to connections as a multiset on
(proto, id.orig_h, id.resp_h, id.resp_p); each line's optional keys must hold:
conn_state, history, icmp {type, code}, rst_from (side of the first RST),
min_syn_retries, rst_ttl (TTL of the first RST), server_ttl (TTL of the SYN-ACKs that
id.resp_h sent in this capture), orig_pkts / resp_pkts (packets each way), copies (how
many times every packet of the connection appears: 2 in a capture on both legs of a
forwarding box). Every TCP/UDP connection must be claimed by exactly one line, and every
ICMP error must quote a packet of one of them. A line with "many": true and a list of
ports in id.resp_p (a port scan) claims every connection from id.orig_h to id.resp_h on
those ports that no ordinary line names: each must fit it, and each port must have been
tried at least once.
"""
import ipaddress
import json
import math
import struct
import sys
from collections import Counter, defaultdict

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def read_pcap(path):
    """Yield (ts, linktype, frame bytes) from a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise SystemExit(f"{path}: too short for a pcap header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap file (pcapng is not supported here)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        yield sec + frac / (1e9 if nano else 1e6), linktype, frame


ETH_IP = (0x0800, 0x86DD)


def ip_payload(linktype, frame):
    """Return the IPv4 or IPv6 packet inside a frame, or None."""
    if linktype == 1:  # Ethernet
        off, etype = 14, struct.unpack(">H", frame[12:14])[0] if len(frame) >= 14 else 0
        while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            etype = struct.unpack(">H", frame[off + 2:off + 4])[0]
            off += 4
        return frame[off:] if etype in ETH_IP else None
    if linktype == 113:  # Linux SLL
        return frame[16:] if len(frame) >= 16 and struct.unpack(">H", frame[14:16])[0] in ETH_IP else None
    if linktype == 276:  # Linux SLL2
        return frame[20:] if len(frame) >= 20 and struct.unpack(">H", frame[0:2])[0] in ETH_IP else None
    if linktype in (12, 14, 101, 228, 229):  # raw IP
        return frame if frame[:1] and frame[0] >> 4 in (4, 6) else None
    return None


def addr(b):
    return str(ipaddress.ip_address(bytes(b)))


VXLAN_PORT = 4789
GRE_TEB, GRE_ERSPAN2, GRE_ERSPAN3 = 0x6558, 0x88BE, 0x22EB


def decap(ip):
    """The mirrored packet inside a mirror feed (VXLAN on UDP 4789; GRE carrying an Ethernet
    frame, plain or behind an ERSPAN type II or III header), else the packet itself. None when
    the mirrored frame is not IP (ARP)."""
    f = ip_fields(ip)
    if f is None:
        return ip
    _ttl, proto, _src, _dst, l4, _len = f
    if proto == 17 and len(l4) >= 16 and struct.unpack(">H", l4[2:4])[0] == VXLAN_PORT:
        return ip_payload(1, l4[16:])   # 8 bytes UDP, 8 bytes VXLAN, then Ethernet
    if proto == 47 and len(l4) >= 4:
        flags, gproto = struct.unpack(">HH", l4[:4])
        off = 4 + 4 * bool(flags & 0x8000) + 4 * bool(flags & 0x2000) + 4 * bool(flags & 0x1000)
        if gproto == GRE_ERSPAN2:
            off += 8
        elif gproto == GRE_ERSPAN3:
            off += 12 + (8 if len(l4) > off + 11 and l4[off + 11] & 0x01 else 0)
        elif gproto != GRE_TEB:
            return ip
        return ip_payload(1, l4[off:])
    return ip


V6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options: skipped; fragments are not


def ip_fields(ip):
    """(ttl or hop limit, proto, src, dst, L4 bytes, L4 length from the IP header) or None."""
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        l4 = ip[ihl:total] if total >= ihl else ip[ihl:]
        return ip[8], ip[9], addr(ip[12:16]), addr(ip[16:20]), l4, total - ihl
    if len(ip) >= 40 and ip[0] >> 4 == 6:
        plen = struct.unpack(">H", ip[4:6])[0]
        nxt, off = ip[6], 40
        while nxt in V6_EXT and len(ip) >= off + 8:
            nxt, off = ip[off], off + (ip[off + 1] + 1) * 8
        l4 = ip[off:40 + plen]
        return ip[7], nxt, addr(ip[8:24]), addr(ip[24:40]), l4, 40 + plen - off
    return None


def seq_delta(a, b):
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d >= 0x80000000 else d


class Endpoint:
    def __init__(self, is_orig):
        self.is_orig = is_orig
        self.state = INACTIVE
        self.prev_state = INACTIVE
        self.start = None       # ISN (absolute)
        self.last_seq = None    # one past the highest sequence seen
        self.ack_seq = None     # highest ack the peer sent for us
        self.hist_last = {}     # letter -> last relative seq recorded
        self.seen = set()       # once-per-direction letters already recorded
        self.rxmit = 0
        self.rxmit_thresh = 1
        self.zero_win = 0
        self.zero_win_thresh = 1
        self.syn_count = 0
        self.pkts = 0
        self.payload = 0
        self.fin_seen = False

    def set_state(self, s):
        self.prev_state, self.state = self.state, s

    def size(self):
        if self.start is None:
            return 0
        if self.prev_state == SYN_SENT and self.state == RESET and self.peer.state == INACTIVE:
            return 0
        top = self.last_seq
        if self.ack_seq is not None and seq_delta(self.ack_seq, top) > 0:
            top = self.ack_seq
        n = seq_delta(top, self.start) - 1  # minus the SYN octet
        if self.fin_seen:
            n -= 1
        return max(n, 0)


class TcpConn:
    def __init__(self, key):
        self.key = key  # (orig_h, orig_p, resp_h, resp_p)
        self.orig = Endpoint(True)
        self.resp = Endpoint(False)
        self.orig.peer, self.resp.peer = self.resp, self.orig
        self.history = []
        self.first_rst = None  # (side, ttl)
        self.ttls = {"orig": Counter(), "resp": Counter()}
        self.synack_ttls = Counter()
        self.icmp = []
        self.first_ts = None
        self.sigs = Counter()  # packet identity (direction, flags, seq, ack, length) -> copies

    def reusable(self, seq):
        """A SYN from the originator after this connection ended (Zeek logs a new one)."""
        if self.resp.state == RESET or self.orig.state == RESET:
            return True
        return self.orig.state == CLOSED and self.resp.state == CLOSED and seq != self.orig.start

    def add_hist(self, ep, code):
        self.history.append(code if ep.is_orig else code.lower())

    def check_hist(self, ep, code):
        """Record `code` once per direction; return True if it was new."""
        if code in ep.seen:
            return True  # CheckHistory returns true on repeat too, letter already present
        ep.seen.add(code)
        self.add_hist(ep, code)
        return False

    def packet(self, ts, is_orig, flags, seq, ack, win, length, ttl):
        ep = self.orig if is_orig else self.resp
        peer = ep.peer
        if self.first_ts is None:
            self.first_ts = ts
        ep.pkts += 1
        ep.payload += length
        side = "orig" if is_orig else "resp"
        if flags & RST:
            if self.first_rst is None:
                self.first_rst = (side, ttl)
        else:
            self.ttls[side][ttl] += 1
        if (flags & SYN) and (flags & ACK):
            self.synack_ttls[ttl] += 1
        if (flags & SYN) and not (flags & ACK):
            ep.syn_count += 1

        seg_len = length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        if ep.start is None:  # init_endpoint
            if flags & SYN:
                ep.start = seq
                ep.last_seq = (seq + seg_len) & 0xFFFFFFFF
            else:
                ep.start = (seq - 1) & 0xFFFFFFFF
                ep.last_seq = seq
        rel_seq = seq_delta(seq, ep.start)

        # update_history
        bits = sum(1 for b in (SYN, FIN, RST) if flags & b)
        if bits > 1:
            self.check_hist(ep, "I" if (flags & FIN and flags & RST) else "Q")
        elif bits == 1:
            for bit, letter, s in ((SYN, "H" if flags & ACK else "S", rel_seq),
                                   (FIN, "F", rel_seq + length),
                                   (RST, "R", rel_seq)):
                if flags & bit:
                    key = {"H": "S", "S": "S"}.get(letter, letter)
                    if key not in ep.hist_last or ep.hist_last[key] != s:
                        self.add_hist(ep, letter)
                    ep.hist_last[key] = s
        else:
            if length:
                self.check_hist(ep, "D")
            elif flags & ACK:
                self.check_hist(ep, "A")

        # update_window (zero-window letter only; window scaling ignored: 0 << n == 0)
        if win == 0 and not (flags & RST) and peer.state != CLOSED and ep.state != RESET:
            ep.zero_win += 1
            if ep.zero_win == ep.zero_win_thresh:
                self.add_hist(ep, "W")
                ep.zero_win_thresh *= 10

        if flags & FIN:
            ep.fin_seen = True
        if flags & ACK:
            if peer.start is None:
                peer.start = (ack - 1) & 0xFFFFFFFF
                peer.last_seq = (ack - 1) & 0xFFFFFFFF
                peer.ack_seq = (ack - 1) & 0xFFFFFFFF
            elif not (flags & RST):
                if peer.ack_seq is None or seq_delta(ack, peer.ack_seq) > 0:
                    peer.ack_seq = ack

        # update_last_seq
        last = (seq + seg_len) & 0xFFFFFFFF
        delta_last = seq_delta(last, ep.last_seq)
        if (flags & (SYN | RST)) and abs(delta_last) > 0x40000000:
            pass
        elif flags & FIN and ep.last_seq == (ep.start + 1) & 0xFFFFFFFF:
            ep.last_seq = last
        elif ep.state == RESET:
            pass
        elif delta_last > 0:
            ep.last_seq = last
        elif length > 0:
            ep.rxmit += 1
            if ep.rxmit == ep.rxmit_thresh:
                self.add_hist(ep, "T")
                ep.rxmit_thresh *= 10

        self.state_machine(ep, peer, is_orig, flags, seq, length, delta_last)

    def state_machine(self, ep, peer, is_orig, flags, seq, length, delta_last):
        s = ep.state
        if s == INACTIVE:
            if flags & SYN:
                if is_orig:
                    ep.set_state(SYN_ACK_SENT if flags & ACK else SYN_SENT)
                else:
                    if not (flags & ACK) and peer.state == SYN_ACK_SENT and seq == ep.start:
                        peer.set_state(ESTABLISHED)  # SYN/SYN-ACK reversal (flip not modelled)
                    if peer.state == SYN_SENT:
                        peer.set_state(ESTABLISHED)
                    ep.set_state(ESTABLISHED)
            if flags & FIN:
                ep.set_state(CLOSED)
            if flags & RST:
                ep.set_state(RESET)
            if ep.state == INACTIVE:
                if not is_orig and length == 0 and self.orig.state == SYN_SENT:
                    pass
                elif flags & ACK and peer.state == ESTABLISHED:
                    ep.set_state(ESTABLISHED)
                else:
                    ep.set_state(PARTIAL)
        elif s in (SYN_SENT, SYN_ACK_SENT):
            if flags & FIN:
                ep.set_state(CLOSED)
            if flags & RST:
                ep.set_state(RESET)
        elif s in (ESTABLISHED, PARTIAL):
            if flags & SYN and s == PARTIAL and peer.state == INACTIVE and not (flags & ACK):
                ep.set_state(SYN_SENT)
            if flags & FIN and not (flags & RST):
                ep.set_state(CLOSED)
                if peer.state == RESET and peer.prev_state == CLOSED:
                    peer.set_state(CLOSED)
            if flags & RST:
                ep.set_state(RESET)
        elif s == CLOSED:
            if flags & RST and peer.state != CLOSED:
                ep.set_state(RESET)

    def conn_state(self):
        o, r = self.orig, self.resp
        o_inact = o.state in (INACTIVE, PARTIAL)
        r_inact = r.state in (INACTIVE, PARTIAL)
        hist = "".join(self.history)
        if r.state == RESET:
            if o.state in (SYN_SENT, SYN_ACK_SENT) or (
                    o.state == RESET and o.size() == 0 and r.size() == 0):
                return "REJ"
            return "RSTRH" if o_inact else "RSTR"
        if o.state == RESET:
            if r_inact:
                import re
                return "RSTOS0" if re.match(r"^\^?S[^HAFGIQ]*R.*", hist) else "OTH"
            return "RSTO"
        if o.state == CLOSED and r.state == CLOSED:
            return "SF"
        if o.state == CLOSED:
            return "SH" if r_inact else "S2"
        if r.state == CLOSED:
            return "SHR" if o_inact else "S3"
        if o.state == SYN_SENT and r.state == INACTIVE:
            return "S0"
        if o.state == ESTABLISHED and r.state == ESTABLISHED:
            return "S1"
        return "OTH"


class UdpConn:
    def __init__(self, key):
        self.key = key
        self.pkts = {"orig": 0, "resp": 0}
        self.icmp = []
        self.first_ts = None
        self.sigs = Counter()  # packet identity (direction, payload) -> copies

    def packet(self, ts, is_orig):
        if self.first_ts is None:
            self.first_ts = ts
        self.pkts["orig" if is_orig else "resp"] += 1

    def conn_state(self):
        o, r = self.pkts["orig"] > 0, self.pkts["resp"] > 0
        return "SF" if o and r else "S0" if o else "SHR" if r else "OTH"


def analyze(path):
    conns = {}   # (proto, a, ap, b, bp) canonical both ways -> conn
    order = []
    loose_icmp = []
    for ts, lt, frame in read_pcap(path):
        ip = ip_payload(lt, frame)
        ip = decap(ip) if ip is not None else None
        f = ip_fields(ip) if ip is not None else None
        if f is None:
            continue
        ttl, proto, src, dst, l4, l4_len = f
        if proto == 6 and len(l4) >= 20:
            sp, dp, seq, ack = struct.unpack(">HHII", l4[:12])
            doff = (l4[12] >> 4) * 4
            flags = l4[13]
            win = struct.unpack(">H", l4[14:16])[0]
            length = max(l4_len - doff, 0)  # from the IP header, as Zeek (snaplen-safe)
            fwd, rev = ("tcp", src, sp, dst, dp), ("tcp", dst, dp, src, sp)
            if fwd in conns and flags & SYN and not flags & ACK and conns[fwd].reusable(seq):
                del conns[fwd]  # a new SYN on a finished connection's tuple: a new connection
            if fwd in conns:
                c, is_orig = conns[fwd], True
            elif rev in conns:
                c, is_orig = conns[rev], False
            else:
                # originator: sender of a pure SYN; a SYN-ACK first means the other side
                # originated (Zeek flips such a connection); otherwise the sender.
                if flags & SYN and flags & ACK:
                    c = TcpConn((dst, dp, src, sp))
                    conns[rev] = c
                    is_orig = False
                else:
                    c = TcpConn((src, sp, dst, dp))
                    conns[fwd] = c
                    is_orig = True
                order.append(("tcp", c))
            c.sigs[(is_orig, flags, seq, ack, length)] += 1
            c.packet(ts, is_orig, flags, seq, ack, win, length, ttl)
        elif proto == 17 and len(l4) >= 8:
            sp, dp = struct.unpack(">HH", l4[:4])
            fwd, rev = ("udp", src, sp, dst, dp), ("udp", dst, dp, src, sp)
            if fwd in conns:
                c, is_orig = conns[fwd], True
            elif rev in conns:
                c, is_orig = conns[rev], False
            else:
                c, is_orig = UdpConn((src, sp, dst, dp)), True
                conns[fwd] = c
                order.append(("udp", c))
            c.sigs[(is_orig, bytes(l4[8:]))] += 1
            c.packet(ts, is_orig)
        elif (proto, l4[:1]) in ((1, b"\x03"), (1, b"\x0b"), (1, b"\x0c"),
                                 (58, b"\x01"), (58, b"\x02"), (58, b"\x03"), (58, b"\x04")):
            # ICMP / ICMPv6 error: quotes the offending packet's IP header and 8 bytes after it
            itype, icode = l4[0], l4[1]
            q = ip_fields(l4[8:]) if len(l4) >= 8 + 20 else None
            if q is None or len(q[4]) < 4:
                continue
            qproto, qsrc, qdst = q[1], q[2], q[3]
            qsp, qdp = struct.unpack(">HH", q[4][:4])
            pname = {6: "tcp", 17: "udp"}.get(qproto)
            key = (pname, qsrc, qsp, qdst, qdp)
            rkey = (pname, qdst, qdp, qsrc, qsp)
            target = conns.get(key) or conns.get(rkey)
            info = {"type": itype, "code": icode, "from": src, "ttl": ttl}
            if target is None:
                loose_icmp.append(info)
            else:
                target.icmp.append(info)
    return order, loose_icmp


def summarize(proto, c):
    oh, op, rh, rp = c.key
    d = {"proto": proto, "id.orig_h": oh, "id.orig_p": op, "id.resp_h": rh, "id.resp_p": rp,
         "conn_state": c.conn_state(), "ts": c.first_ts}
    if proto == "tcp":
        d["history"] = "".join(c.history)
        d["orig_pkts"], d["resp_pkts"] = c.orig.pkts, c.resp.pkts
        d["orig_payload"], d["resp_payload"] = c.orig.payload, c.resp.payload
        d["syn_retries"] = max(c.orig.syn_count - 1, 0)
        if c.first_rst:
            d["rst_from"], d["rst_ttl"] = c.first_rst
        d["ttls"] = {k: sorted(v) for k, v in c.ttls.items() if v}
    else:
        d["orig_pkts"], d["resp_pkts"] = c.pkts["orig"], c.pkts["resp"]
    if c.icmp:
        d["icmp"] = c.icmp
    # How many times every packet appears: 2 when a capture on two interfaces of a forwarding
    # box holds each forwarded packet twice (the gcd, so a real retransmission does not hide it).
    d["copies"] = math.gcd(*c.sigs.values()) if c.sigs else 0
    return d


def fits(exp, got, synack_ttls):
    why = []
    for k in ("conn_state", "history", "rst_from", "rst_ttl", "orig_pkts", "resp_pkts", "copies"):
        if k in exp and exp[k] != got.get(k):
            why.append(f"{k} {got.get(k)!r} != {exp[k]!r}")
    if "min_syn_retries" in exp and got.get("syn_retries", 0) < exp["min_syn_retries"]:
        why.append(f"syn_retries {got.get('syn_retries')} < {exp['min_syn_retries']}")
    if "icmp" in exp:
        seen = [(i["type"], i["code"]) for i in got.get("icmp", [])]
        if (exp["icmp"]["type"], exp["icmp"]["code"]) not in seen:
            why.append(f"icmp {seen} lacks {exp['icmp']}")
    if "server_ttl" in exp:
        ttls = set(synack_ttls.get(exp["id.resp_h"], ()))
        if ttls != {exp["server_ttl"]}:
            why.append(f"SYN-ACK TTLs from {exp['id.resp_h']} {sorted(ttls)} != [{exp['server_ttl']}]")
    return why


def match(expects, gots, synack_ttls):
    """Assign every expect line to a distinct connection (small backtracking)."""
    best = None

    def go(i, used, acc):
        nonlocal best
        if i == len(expects):
            best = list(acc)
            return True
        for j, g in enumerate(gots):
            if j not in used and not fits(expects[i], g, synack_ttls):
                acc.append(j)
                used.add(j)
                if go(i + 1, used, acc):
                    return True
                used.discard(j)
                acc.pop()
        return False

    go(0, set(), [])
    return best


def main(argv):
    if len(argv) >= 2 and argv[0] == "--dump":
        order, loose = analyze(argv[1])
        for proto, c in order:
            print(json.dumps(summarize(proto, c)))
        for i in loose:
            print(json.dumps({"unattached_icmp": i}))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pcap, expect_path = argv
    order, loose = analyze(pcap)
    got = [summarize(p, c) for p, c in order]
    synack_ttls = defaultdict(set)
    for p, c in order:
        if p == "tcp":
            synack_ttls[c.key[2]].update(c.synack_ttls)
    with open(expect_path) as f:
        expects = [json.loads(line) for line in f if line.strip()]
    many = [e for e in expects if e.get("many")]
    expects = [e for e in expects if not e.get("many")]
    groups_e, groups_g = defaultdict(list), defaultdict(list)
    for e in expects:
        groups_e[(e["proto"], e["id.orig_h"], e["id.resp_h"], e["id.resp_p"])].append(e)
    for g in got:
        groups_g[(g["proto"], g["id.orig_h"], g["id.resp_h"], g["id.resp_p"])].append(g)
    problems = []
    # "many" lines (a scan): each claims every connection from id.orig_h to id.resp_h on one of
    # its ports (id.resp_p is a list) that no ordinary line names; every one must fit it, and
    # every port of the list must have been tried at least once.
    claimed = defaultdict(int)
    for key in [k for k in groups_g if k not in groups_e]:
        for g in groups_g.pop(key):
            lines = [i for i, m in enumerate(many) if (m["proto"], m["id.orig_h"], m["id.resp_h"]) == key[:3]
                     and key[3] in m["id.resp_p"]]
            if not lines:
                groups_g[key].append(g)  # reported below as unexpected
                continue
            bad = fits(many[lines[0]], g, synack_ttls)
            if bad:
                problems.append(f"{key}: does not fit its many-line: {', '.join(bad)}")
            claimed[(lines[0], key[3])] += 1
    for i, m in enumerate(many):
        missing = [p for p in m["id.resp_p"] if not claimed[(i, p)]]
        if missing:
            problems.append(f"many-line {m['proto']} {m['id.orig_h']} -> {m['id.resp_h']}: no connection on {missing}")
    for key in sorted(set(groups_e) | set(groups_g), key=str):
        es, gs = groups_e.get(key, []), groups_g.get(key, [])
        if len(es) != len(gs):
            problems.append(f"{key}: {len(es)} expected, {len(gs)} in capture: "
                            + "; ".join(f"{g['conn_state']} {g.get('history', '')}" for g in gs))
            continue
        if match(es, gs, synack_ttls) is None:
            detail = [f"expected {e} / reasons vs each: "
                      + " | ".join(", ".join(fits(e, g, synack_ttls)) or "fits" for g in gs)
                      for e in es]
            problems.append(f"{key}: no assignment fits: " + "; ".join(detail))
    for i in loose:
        problems.append(f"ICMP {i} quotes no connection in the capture")
    name = pcap.rsplit("/", 1)[-1]
    if problems:
        print(f"{name}: MISMATCH", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        for g in got:
            print("  got " + json.dumps(g), file=sys.stderr)
        return 1
    print(f"{name}: {len(got)} connections match {len(expects)} expect lines"
          + (f" and {len(many)} many-lines" if many else ""))
    for g in got:
        extra = ""
        if "rst_from" in g:
            extra += f" first RST from {g['rst_from']} ttl {g['rst_ttl']}"
        if "icmp" in g:
            extra += " icmp " + ",".join(f"{i['type']}/{i['code']} from {i['from']}" for i in g["icmp"])
        print(f"  {g['proto']} {g['id.orig_h']}:{g['id.orig_p']} -> {g['id.resp_h']}:{g['id.resp_p']}"
              f" {g['conn_state']} {g.get('history', '')} pkts {g['orig_pkts']}/{g['resp_pkts']}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
