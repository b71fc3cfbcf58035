#!/usr/bin/env python3
"""Input frames for the pcap replay tests, and a reader that turns output pcaps into JSON.

  packets.py write SPEC.json OUT.pcap   writes the frames SPEC.json describes (a list of frame specs)
  packets.py read IN.pcap               prints one JSON object per frame: bytes and decoded fields,
                                        with every checksum recomputed by scapy and compared

Frames are built and checked by scapy, independently of the data plane's own packet code."""
import json
import sys

from scapy.all import ARP, GRE, ICMP, IP, TCP, UDP, Ether, IPerror, Raw, TCPerror, rdpcap
from scapy.utils import PcapWriter


def build(spec):
    """One frame from a spec: {"kind": ..., fields...}; "truncate" cuts the finished frame."""
    kind = spec["kind"]
    eth = Ether(src=spec.get("srcMac", "02:c1:00:00:00:01"), dst=spec.get("dstMac", "02:ee:00:00:00:00"))
    if kind == "raw":
        return bytes.fromhex(spec["hex"])
    if kind == "arp-request":
        frame = eth.copy()
        frame.dst = "ff:ff:ff:ff:ff:ff"
        frame = frame / ARP(op=1, hwsrc=frame.src, psrc=spec["senderIp"], pdst=spec["targetIp"])
    elif kind == "other-ethertype":
        frame = eth / Raw(b"\x00" * 46)
        frame.type = spec.get("type", 0x88CC)
    else:
        ip = IP(src=spec["src"], dst=spec["dst"], ttl=spec.get("ttl", 64), id=spec.get("id", 1))
        if "options" in spec:
            ip.options = [bytes.fromhex(spec["options"])]
        if "flags" in spec:
            ip.flags = spec["flags"]
        if "frag" in spec:
            ip.frag = spec["frag"]
        payload = bytes.fromhex(spec.get("payload", ""))
        if kind == "tcp":
            l4 = TCP(sport=spec["sport"], dport=spec["dport"], flags=spec.get("tcpFlags", "S"), seq=spec.get("seq", 1000))
        elif kind == "udp":
            l4 = UDP(sport=spec["sport"], dport=spec["dport"])
        elif kind == "icmp-echo":
            l4 = ICMP(type=8, id=spec.get("icmpId", 0x4242), seq=spec.get("icmpSeq", 1))
        elif kind == "icmp-error":
            # an error quoting a TCP packet: {"icmpType", "icmpCode", "quoted": {src, dst, sport, dport}}
            q = spec["quoted"]
            l4 = ICMP(type=spec.get("icmpType", 3), code=spec.get("icmpCode", 4), nexthopmtu=spec.get("mtu", 1400)) / \
                IP(src=q["src"], dst=q["dst"], ttl=63) / TCP(sport=q["sport"], dport=q["dport"], flags="A", seq=5000)
        elif kind == "ip-payload":
            # a later fragment: IP header (protocol given) and payload bytes, no L4 header
            ip.proto = spec.get("proto", 6)
            frame = eth / ip / Raw(bytes.fromhex(spec["payload"]))
            l4 = None
        else:
            raise ValueError(f"unknown frame kind {kind}")
        if l4 is not None:
            frame = eth / ip / l4 / Raw(payload) if payload else eth / ip / l4
    data = bytearray(bytes(frame))
    # Byte patches after checksums are computed (e.g. a bad IHL or data offset): {"offset": n, "hex": ".."}
    for patch in spec.get("patch", []):
        new = bytes.fromhex(patch["hex"])
        data[patch["offset"]:patch["offset"] + len(new)] = new
    if "truncate" in spec:
        data = data[: spec["truncate"]]
    return bytes(data)


def write(spec_file, out_file):
    with open(spec_file) as f:
        specs = json.load(f)
    frames = [build(s) for s in specs]
    writer = PcapWriter(out_file, linktype=1, sync=True)
    writer._write_header(None)  # an empty input still needs a valid pcap header
    for frame in frames:
        writer.write(frame)
    writer.close()


def checksum_ok(pkt, layer, index=1):
    """Rebuilds the frame with this layer's checksum cleared and compares what scapy computes."""
    original = pkt.getlayer(layer, index).chksum
    copy = Ether(bytes(pkt))
    del copy.getlayer(layer, index).chksum
    return Ether(bytes(copy)).getlayer(layer, index).chksum == original


def ip_fields(pkt, index, layer=IP):
    ip = pkt.getlayer(layer, index)
    out = {"src": ip.src, "dst": ip.dst, "ttl": ip.ttl, "proto": ip.proto, "ihl": ip.ihl, "len": ip.len,
           "id": ip.id, "flags": int(ip.flags), "frag": ip.frag, "checksumOk": checksum_ok(pkt, layer, index),
           "hex": bytes(ip)[: ip.len].hex()}
    return out


def describe(raw):
    pkt = Ether(raw)
    out = {"hex": raw.hex(), "len": len(raw), "eth": {"src": pkt.src, "dst": pkt.dst, "type": pkt.type}}
    if ARP in pkt:
        a = pkt[ARP]
        out["arp"] = {"op": a.op, "hwsrc": a.hwsrc, "psrc": a.psrc, "hwdst": a.hwdst, "pdst": a.pdst}
    if IP in pkt:
        out["ip"] = ip_fields(pkt, 1)
        if pkt.getlayer(IP, 2) is not None:
            out["inner"] = ip_fields(pkt, 2)
    if GRE in pkt:
        g = pkt[GRE]
        out["gre"] = {"proto": g.proto, "flags": bytes(g)[:2].hex()}
    top = pkt.getlayer(IP, 2) or pkt.getlayer(IP, 1)
    if top is not None:
        index = 2 if pkt.getlayer(IP, 2) is not None else 1
        if TCP in top:
            t = top[TCP]
            out["tcp"] = {"sport": t.sport, "dport": t.dport, "flags": str(t.flags), "seq": t.seq,
                          "checksumOk": checksum_ok(pkt, TCP), "payload": bytes(t.payload).hex()}
        if UDP in top:
            u = top[UDP]
            out["udp"] = {"sport": u.sport, "dport": u.dport, "checksumOk": checksum_ok(pkt, UDP)}
        if ICMP in top:
            c = top[ICMP]
            out["icmp"] = {"type": c.type, "code": c.code, "id": c.id, "seq": c.seq,
                           "checksumOk": checksum_ok(pkt, ICMP), "payload": bytes(c.payload).hex()}
        out["ipIndex"] = index
    if ICMP in pkt and pkt[ICMP].type in (3, 11, 12):
        c = pkt[ICMP]
        out["icmpError"] = {"type": c.type, "code": c.code, "checksumOk": checksum_ok(pkt, ICMP)}
        if IPerror in pkt:
            out["inner"] = ip_fields(pkt, 1, IPerror)
        if TCPerror in pkt:
            out["tcp"] = {"sport": pkt[TCPerror].sport, "dport": pkt[TCPerror].dport}
    return out


def read(pcap_file):
    for frame in rdpcap(pcap_file):
        raw = bytes(frame)
        try:
            print(json.dumps(describe(raw)))
        except Exception as e:  # a frame too broken for scapy's dissectors (truncated headers)
            print(json.dumps({"hex": raw.hex(), "len": len(raw), "undecodable": repr(e)}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "read":
        read(sys.argv[2])
    else:
        sys.exit(__doc__)
