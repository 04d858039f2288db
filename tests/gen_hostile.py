#!/usr/bin/env python3
"""Writes the hostile captures of issue 18 (timestamps, interfaces, link types, rotated files,
filters, zstd windows) at full size, for measuring a build before and after by hand:

    python3 tests/gen_hostile.py OUTDIR

tests/hostile_input.rs builds the same captures, smaller, inside `cargo test`. Files:

  stray.pcapng         100,000 handshakes (SYN, SYN-ACK, ACK; 26 MB), the middle packet
                       stamped 0xFFFFFFFFFFFFFFFF us; plain.pcapng: the same without it
  offset.pcapng        samples/exchange-healthy.pcap on an interface with if_tsoffset 2^62
  jump.pcap            the same sample, +10 years from its middle packet on
  zero.pcap            the same sample, one packet stamped 0 and one stepped back 3 ms
  ifaces.pcapng.zst    10,000,000 interface descriptions in one section, then packets
  links.pcapng         64 sections x 1,024 interfaces, each its own link type, a packet each
  rotated/x.pcap*      the sample cut into 12 rotated files (x.pcap, x.pcap1 ... x.pcap11)
  unfilterable.pcapng  Ethernet frames and frames of link type 65000 (libpcap cannot filter)
  long.pcap.zst        a 200 MB capture compressed with zstd --long=31
"""
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "samples", "exchange-healthy.pcap")
T0 = 1_700_000_000_000_000  # us


def read_pcap(path):
    d = open(path, "rb").read()
    link = struct.unpack_from("<I", d, 20)[0]
    at, out = 24, []
    while at + 16 <= len(d):
        s, us, cap, wire = struct.unpack_from("<IIII", d, at)
        out.append([s * 1_000_000 + us, d[at + 16 : at + 16 + cap], wire])
        at += 16 + cap
    return link, out


def write_pcap(link, recs):
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link)]
    for t, data, wire in recs:
        out.append(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(data), wire) + data)
    return b"".join(out)


def block(t, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", t, n) + body + struct.pack("<I", n)


SHB = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(link, offset=None):
    body = struct.pack("<HHI", link, 0, 0)
    if offset is not None:
        body += struct.pack("<HHq", 14, 8, offset) + b"\0\0\0\0"
    return block(1, body)


def epb(iface, ts, data, wire):
    return block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), wire) + data)


def tcp(n, back, flags):
    client = bytes([192, 0, 2, 1 + n // 60000])
    server = bytes([198, 51, 100, 7])
    sport = 1024 + n % 60000
    src, dst, sp, dp = (server, client, 443, sport) if back else (client, server, sport, 443)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, src, dst)
    seg = struct.pack("!HHIIBBHHH", sp, dp, 5000 if back else 1000, 1001 if back else 0, 0x50, flags, 65535, 0, 0)
    return bytes(6) + bytes([0, 1, 2, 3, 4, 6]) + b"\x08\x00" + ip + seg


def main(out):
    os.makedirs(out, exist_ok=True)
    put = lambda name, data: open(os.path.join(out, name), "wb").write(data)
    # 1. A stray timestamp among 100,000 connections.
    pkts = []
    for i in range(100_000):
        t = T0 + i * 30
        pkts += [(t, tcp(i, False, 0x02)), (t + 10, tcp(i, True, 0x12)), (t + 20, tcp(i, False, 0x10))]
    plain = [SHB, idb(1)] + [epb(0, t, d, 54) for t, d in pkts]
    put("plain.pcapng", b"".join(plain))
    mid = len(pkts) // 2
    plain[2 + mid] = epb(0, 2**64 - 1, pkts[mid][1], 54)
    put("stray.pcapng", b"".join(plain))
    link, recs = read_pcap(SAMPLE)
    put("offset.pcapng", b"".join([SHB, idb(link, 1 << 62)] + [epb(0, t, d, w) for t, d, w in recs]))
    half = len(recs) // 2
    y10 = 10 * 365 * 86400 * 1_000_000
    put("jump.pcap", write_pcap(link, [[t + (y10 if i >= half else 0), d, w] for i, (t, d, w) in enumerate(recs)]))
    z = [list(r) for r in recs]
    z[5][0] = 0
    z[8][0] = z[7][0] - 3000
    put("zero.pcap", write_pcap(link, z))
    # 2. Interfaces.
    p = subprocess.Popen(["zstd", "-q", "-19", "-f", "-o", os.path.join(out, "ifaces.pcapng.zst")], stdin=subprocess.PIPE)
    p.stdin.write(SHB)
    chunk = idb(1) * 100_000
    for _ in range(100):
        p.stdin.write(chunk)
    f = tcp(1, False, 0x02)
    p.stdin.write(epb(0, T0, f, 54) + epb(5_000_000, T0 + 1, f, 54) + epb(0, T0 + 2, f, 54))
    p.stdin.close()
    p.wait()
    # 3. Link types.
    parts, link = [], 1
    for _ in range(64):
        parts.append(SHB)
        for _ in range(1024):
            parts.append(idb(link % 65536))
            link += 1
        for i in range(1024):
            parts.append(epb(i, T0 + link, f, 54))
    put("links.pcapng", b"".join(parts))
    # 4. Rotated files.
    rot = os.path.join(out, "rotated")
    os.makedirs(rot, exist_ok=True)
    per = -(-len(recs) // 12)
    for i in range(12):
        name = "x.pcap" + (str(i) if i else "")
        open(os.path.join(rot, name), "wb").write(write_pcap(link_of_sample(), recs[i * per : (i + 1) * per]))
    # 5. A link type libpcap cannot filter.
    put("unfilterable.pcapng", b"".join([SHB, idb(1), idb(65000), epb(0, T0, f, 54), epb(1, T0 + 1, f, 54), epb(0, T0 + 2, tcp(1, True, 0x12), 54)]))
    # 6. zstd --long=31 of a 200 MB capture.
    big = os.path.join(out, "long.pcap")
    with open(big, "wb") as fh:
        fh.write(write_pcap(1, []))
        rec = struct.pack("<IIII", T0 // 1_000_000, 0, len(f), 54) + f
        fh.write(rec * (200_000_000 // len(rec)))
    subprocess.run(["zstd", "-q", "-f", "--long=31", big, "-o", big + ".zst"], check=True)
    os.remove(big)


def link_of_sample():
    return read_pcap(SAMPLE)[0]


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "hostile")
