"""Prints, one JSON line per frame of a pcap file, the fields QoS and tunnel tests assert on, as
scapy dissects them (so expectations never rest on the data plane's own packet code):
802.1Q tags, MPLS label entries, the IP header (DSCP, addresses, checksum) and the TCP ports/flags.

usage: frame-fields.py FILE.pcap"""
import json
import sys

from scapy.all import IP, TCP, Dot1Q, Ether, rdpcap
from scapy.contrib.mpls import MPLS


def fields(frame):
    out = {"vlan": [], "mpls": []}
    layer = frame.payload if isinstance(frame, Ether) else frame
    while isinstance(layer, Dot1Q):
        out["vlan"].append({"vid": layer.vlan, "pcp": layer.prio})
        layer = layer.payload
    # scapy does not bind MPLS to the Ethernet type by default: decode the label stack by hand
    if isinstance(frame, Ether) and (frame.type == 0x8847 or (out["vlan"] and frame[Dot1Q].type == 0x8847)):
        layer = MPLS(bytes(layer))
        while isinstance(layer, MPLS):
            out["mpls"].append({"label": layer.label, "tc": layer.cos, "bottom": layer.s, "ttl": layer.ttl})
            layer = IP(bytes(layer.payload)) if layer.s else layer.payload
    if isinstance(layer, IP):
        checksum = layer.chksum
        recomputed = IP(bytes(layer)[: layer.ihl * 4])
        del recomputed.chksum
        out["ip"] = {
            "src": layer.src,
            "dst": layer.dst,
            "dscp": layer.tos >> 2,
            "ecn": layer.tos & 3,
            "checksumOk": IP(bytes(recomputed)).chksum == checksum,
        }
        if isinstance(layer.payload, TCP):
            out["tcp"] = {"sport": layer.payload.sport, "dport": layer.payload.dport, "flags": str(layer.payload.flags)}
    return out


for frame in rdpcap(sys.argv[1]):
    print(json.dumps(fields(frame)))
