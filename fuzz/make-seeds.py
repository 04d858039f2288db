#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora from samples/ (nothing binary is committed).

    fuzz/make-seeds.py            # fills fuzz/corpus/{frame,capture,site}/

- frame:   runs of consecutive frames of every sample pcap, in the `frame` target's input
           layout, re-wrapped in each link type exflow decodes (Ethernet frames re-framed as
           raw IP, BSD NULL/LOOP, Linux SLL/SLL2, PPP, Cisco HDLC, 802.11 and
           radiotap+802.11), and in each tunnel it opens (GRE, ERSPAN II and III, VXLAN,
           Geneve); and 24 frames from the first SYN to each port (past STARTTLS);
- capture: every sample pcap as it is, the first records of each, pcapng conversions (both
           byte orders), a gzip-compressed one, and ../shared/captures/pcapng-generator/*.pcapng
           and ../shared/captures/tunnels/* when present;
- site:    samples/*.site.toml.
Existing files are kept (libFuzzer's own finds stay in the corpus); seeds are named by
content hash, so running it twice adds nothing.
"""

import gzip
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SAMPLES = os.path.join(ROOT, "samples")
CORPUS = os.path.join(HERE, "corpus")

# exflow::decode::supports, in increasing order (the `frame` target indexes this list).
LINKS = [0, 1, 9, 12, 14, 50, 101, 104, 105, 108, 113, 127, 228, 229, 276]


def put(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    path = os.path.join(d, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        return 1
    return 0


def read_pcap(path):
    """(link type, [(ts_sec, ts_usec, caplen, wire_len, bytes)], header) of a legacy pcap."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    link = struct.unpack(end + "I", data[20:24])[0] & 0x03FFFFFF
    recs, off = [], 24
    while off + 16 <= len(data):
        sec, usec, cap, wire = struct.unpack(end + "IIII", data[off : off + 16])
        body = data[off + 16 : off + 16 + cap]
        recs.append((sec, usec, cap, wire, body))
        off += 16 + cap
    return link, recs, data


def ip_of(link, frame):
    """The IP packet inside an Ethernet or SLL2 frame (None if it is not plain IP)."""
    if link == 1 and len(frame) >= 14:
        et = struct.unpack(">H", frame[12:14])[0]
        if et in (0x0800, 0x86DD):
            return frame[14:]
    if link == 276 and len(frame) >= 20:
        et = struct.unpack(">H", frame[0:2])[0]
        if et in (0x0800, 0x86DD):
            return frame[20:]
    return None


def syn_port(ip):
    """The destination port of an IPv4 TCP SYN (no ACK), else None."""
    if not ip or len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    tcp = ip[(ip[0] & 15) * 4 :]
    if len(tcp) < 14 or tcp[13] & 0x12 != 0x02:
        return None
    return struct.unpack(">H", tcp[2:4])[0]


def wrap(link, ip):
    """`ip` framed for link type `link`."""
    v6 = bool(ip) and ip[0] >> 4 == 6
    et = 0x86DD if v6 else 0x0800
    snap = b"\xaa\xaa\x03\x00\x00\x00" + struct.pack(">H", et)
    wlan = b"\x08\x01" + b"\x00\x00" + b"\x02" * 6 + b"\x04" * 6 + b"\x06" * 6 + b"\x00\x00"
    if link == 0:
        return struct.pack("<I", 30 if v6 else 2) + ip
    if link == 1:
        return b"\x02" * 6 + b"\x04" * 6 + struct.pack(">H", et) + ip
    if link in (12, 14, 101, 228, 229):
        return ip
    if link == 105:
        return wlan + snap + ip
    if link == 108:
        return struct.pack(">I", 24 if v6 else 2) + ip
    if link == 113:
        return struct.pack(">HHH", 0, 1, 6) + b"\x02" * 6 + b"\x00\x00" + struct.pack(">H", et) + ip
    if link == 127:
        radiotap = struct.pack("<BBHI", 0, 0, 8, 0)
        return radiotap + wlan + snap + ip
    if link == 276:
        return struct.pack(">HHIHBB", et, 0, 1, 1, 0, 6) + b"\x02" * 8 + ip
    if link in (9, 50):
        return b"\xff\x03" + struct.pack(">H", 0x57 if v6 else 0x21) + ip
    if link == 104:
        return b"\x0f\x00" + struct.pack(">H", et) + ip
    raise ValueError(link)


TUNNELS = ["gre", "gre-teb", "erspan2", "erspan3", "vxlan", "geneve"]


def tunnel(kind, ip):
    """`ip` in a tunnel of `kind`, in an outer IPv4 packet from 192.0.2.1 to 192.0.2.2."""
    v6 = bool(ip) and ip[0] >> 4 == 6
    et = 0x86DD if v6 else 0x0800
    eth = b"\x02" * 6 + b"\x04" * 6 + struct.pack(">H", et) + ip
    if kind == "gre":
        proto, payload = 47, struct.pack(">HH", 0, et) + ip
    elif kind == "gre-teb":
        proto, payload = 47, struct.pack(">HHI", 0x2000, 0x6558, 7) + eth
    elif kind == "erspan2":
        proto, payload = 47, struct.pack(">HHI", 0x1000, 0x88BE, 1) + struct.pack(">II", 0x10000001, 0) + eth
    elif kind == "erspan3":
        hdr = struct.pack(">IIHBB", 0x20000001, 0, 0, 0, 1) + b"\x00" * 8
        proto, payload = 47, struct.pack(">HHI", 0x1000, 0x22EB, 1) + hdr + eth
    elif kind == "vxlan":
        body = struct.pack(">II", 0x08000000, 42 << 8) + eth
        proto, payload = 17, struct.pack(">HHHH", 51000, 4789, 8 + len(body), 0) + body
    else:
        body = struct.pack(">BBHI", 1, 0, 0x6558, 7 << 8) + b"\x00" * 4 + eth
        proto, payload = 17, struct.pack(">HHHH", 51000, 6081, 8 + len(body), 0) + body
    total = 20 + len(payload)
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, total & 0xFFFF, 1, 0, 64, proto, 0,
                       bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])) + payload


def frame_input(link, frames):
    """The `frame` target's layout: link index, then [dt][cut][len le16][bytes] per frame."""
    out = bytearray([LINKS.index(link)])
    last = None
    for ts, cap, wire, body in frames:
        dt = 0 if last is None else max(0, min(254, round(((ts - last) * 1000) ** (1 / 3))))
        last = ts
        cut = max(0, min(255, wire - cap))
        body = body[:0xFFFF]
        out += bytes([dt, cut]) + struct.pack("<H", len(body)) + body
    return bytes(out)


def pcapng(link, recs, big_endian):
    e = ">" if big_endian else "<"

    def block(btype, body):
        body += b"\x00" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)

    out = block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack(e + "HHI", link, 0, 262144))
    for sec, usec, cap, wire, body in recs:
        t = sec * 1_000_000 + usec
        out += block(6, struct.pack(e + "IIIII", 0, t >> 32, t & 0xFFFFFFFF, cap, wire) + body)
    return out


def main():
    added = {"frame": 0, "capture": 0, "site": 0, "records": 0, "pcapng_clock": 0}
    pcaps = sorted(f for f in os.listdir(SAMPLES) if f.endswith(".pcap"))
    turn = 0
    for name in pcaps:
        path = os.path.join(SAMPLES, name)
        link, recs, data = read_pcap(path)
        # capture: the file, its first records, pcapng in both byte orders, gzip.
        added["capture"] += put("capture", data)
        cut = 24 + sum(16 + r[2] for r in recs[:6])
        added["capture"] += put("capture", data[:cut])
        if name in ("rst-refused.pcap", "ipv6-site.pcap", "two-interfaces.pcap"):
            added["capture"] += put("capture", pcapng(link, recs[:20], False))
            added["capture"] += put("capture", pcapng(link, recs[:20], True))
            added["capture"] += put("capture", gzip.compress(data[:cut], mtime=0))
        # frame: runs of 6 frames, each run in its own link type (and in its own).
        for i in range(0, min(len(recs), 96), 6):
            run = recs[i : i + 6]
            frames = [(s + u / 1e6, c, w, b) for s, u, c, w, b in run]
            added["frame"] += put("frame", frame_input(link, frames))
            other = LINKS[turn % len(LINKS)]
            turn += 1
            ips = [(t, c, w, ip_of(link, b)) for t, c, w, b in frames]
            wrapped = [(t, c, w, wrap(other, ip)) for t, c, w, ip in ips if ip is not None]
            if wrapped:
                added["frame"] += put("frame", frame_input(other, wrapped))
            # The same packets in a tunnel, in Ethernet.
            kind = TUNNELS[turn % len(TUNNELS)]
            tunnelled = [(t, c, w, wrap(1, tunnel(kind, ip))) for t, c, w, ip in ips if ip is not None]
            if tunnelled:
                added["frame"] += put("frame", frame_input(1, tunnelled))
        # frame: a longer run from the first SYN to each port, in its own link type: the
        # dialogue past its first lines (a STARTTLS handover and the ClientHello after it,
        # SMTP's, IMAP's, POP3's), which six frames do not reach.
        ports = set()
        for i, r in enumerate(recs):
            port = syn_port(ip_of(link, r[4]))
            if port is None or port in ports:
                continue
            ports.add(port)
            frames = [(s + u / 1e6, c, w, b) for s, u, c, w, b in recs[i : i + 24]]
            added["frame"] += put("frame", frame_input(link, frames))
    # The firewall's two-interface captures as dumpcap wrote them (out of time order, every
    # forwarded packet once per interface, NAT legs): the reorder buffer and copy pairing.
    for f in sorted(os.listdir(SAMPLES)):
        if f.endswith(".fw2.pcapng"):
            with open(os.path.join(SAMPLES, f), "rb") as fh:
                added["capture"] += put("capture", fh.read())
    # records: Zeek's conn.logs (TSV), the samples' --flows lines (exflow's own), a few of
    # each cut short.
    logs = os.path.join(ROOT, "..", "shared", "captures", "zeek-logs")
    if os.path.isdir(logs):
        for f in sorted(os.listdir(logs)):
            with open(os.path.join(logs, f), "rb") as fh:
                added["records"] += put("records", fh.read())
    for f in sorted(os.listdir(SAMPLES)):
        if f.endswith(".expect.jsonl"):
            with open(os.path.join(SAMPLES, f), "rb") as fh:
                lines = fh.read().splitlines(keepends=True)
            added["records"] += put("records", b"".join(lines[:4]))
    for sub in ("pcapng-generator", "tunnels"):
        shared = os.path.join(ROOT, "..", "shared", "captures", sub)
        if os.path.isdir(shared):
            for f in sorted(os.listdir(shared)):
                with open(os.path.join(shared, f), "rb") as fh:
                    added["capture"] += put("capture", fh.read())
    for f in sorted(os.listdir(SAMPLES)):
        if f.endswith(".site.toml"):
            with open(os.path.join(SAMPLES, f), "rb") as fh:
                added["site"] += put("site", fh.read())
    # pcapng_clock: scripts (see fuzz_targets/pcapng_clock.rs): interfaces with options,
    # packets near a base time, one stamped 2^64-1, a jump, an offset of 2^62 s.
    iface_opts = bytes([1, 1, 0, 0, 0, 0, 3, 6]) + bytes([2, 0, 0x40, 0]) + (1 << 62).to_bytes(8, "little")
    packet = lambda sel, kind, val: bytes([4, sel, kind]) + val + bytes([1])
    near = lambda d: packet(0, 1, d.to_bytes(4, "little"))
    added["pcapng_clock"] += put("pcapng_clock", iface_opts + near(0) + packet(0x40, 1, (5).to_bytes(4, "little")))
    added["pcapng_clock"] += put("pcapng_clock", bytes([1, 0, 0, 0, 0, 0, 0]) + near(0) + packet(0, 0, (2**64 - 1).to_bytes(8, "little")) + near(9))
    added["pcapng_clock"] += put("pcapng_clock", bytes([1, 0, 0, 0, 0, 0, 0]) + near(0) + packet(0, 0, (2**62).to_bytes(8, "little")) + near(3) + packet(0, 3, bytes(2)))
    added["pcapng_clock"] += put("pcapng_clock", bytes([1, 1, 0, 0, 0, 0, 8, 0xff, 0x04]) + near(0) + packet(0x85, 1, bytes(4)) + bytes([3, 1]))
    for t, n in added.items():
        total = len(os.listdir(os.path.join(CORPUS, t)))
        print(f"{t}: {n} seeds added, {total} in fuzz/corpus/{t}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
