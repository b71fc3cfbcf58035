/* Packet parsing and header rewriting on raw frame bytes.
 *
 * Everything here works on a contiguous buffer (one mbuf segment) so it can be unit-tested and
 * fuzzed without an EAL. The worker parses each frame once into struct ep_meta and the rewriters
 * use the offsets recorded there. All addresses and ports are kept in network byte order. */
#ifndef EP_PACKET_H
#define EP_PACKET_H

#include <stdint.h>
#include <stddef.h>

#include "drop_reason.h"
#include "flow_key.h"

enum ep_pkt_kind {
	EP_PKT_DROP = 0, /* malformed: see ep_meta.drop */
	EP_PKT_IPV4,
	EP_PKT_IPV6,
	EP_PKT_ARP,
	EP_PKT_OTHER, /* a well-formed frame of an ethertype the data plane does not handle */
};

#define EP_META_VLAN 0x01       /* one 802.1Q tag present (its TCI in vlan_tci) */
#define EP_META_FRAGMENT 0x02   /* IPv4 MF set or fragment offset != 0, or IPv6 fragment header */
#define EP_META_IP_OPTIONS 0x04 /* IPv4 IHL > 5 */
#define EP_META_MPLS 0x08       /* an MPLS label stack (mpls_depth labels) sits before the IP header */

#define EP_TCP_FIN 0x01
#define EP_TCP_SYN 0x02
#define EP_TCP_RST 0x04
#define EP_TCP_PSH 0x08
#define EP_TCP_ACK 0x10
#define EP_TCP_URG 0x20

struct ep_meta {
	uint8_t kind;       /* enum ep_pkt_kind */
	uint8_t drop;       /* enum ep_drop_reason when kind == EP_PKT_DROP */
	uint8_t flags;      /* EP_META_* */
	uint8_t tcp_flags;  /* EP_TCP_* for TCP, else 0 */
	uint8_t mpls_depth; /* labels between the Ethernet header and l3_off */
	uint8_t pad;        /* always zero: no implicit padding, so a meta compares as bytes */
	uint16_t vlan_tci;  /* host order */
	uint16_t l3_off;    /* offset of the IP (or ARP) header from the frame start */
	uint16_t l4_off;    /* offset of the TCP/UDP/ICMP header; 0 when there is none */
	uint16_t l3_len;    /* IPv4 total length / IPv6 payload length + 40 (bytes of IP datagram) */
	uint16_t payload_off; /* offset of L4 payload (after TCP options / UDP / ICMP header); 0 if none */
	struct ep_flow_key key; /* 5-tuple; ports 0 for non-TCP/UDP, ICMP echo id in sport */
};

/* Parses Ethernet, at most one 802.1Q tag, an MPLS label stack (up to 8 labels, IP below it),
 * then IPv4 (+TCP/UDP/ICMP), IPv6 (+TCP/UDP/ICMPv6,
 * extension headers skipped: hop-by-hop, routing, destination options, fragment) or ARP.
 * Checks: frame long enough for every header it claims; IPv4 version 4, IHL >= 5, total length
 * >= IHL*4 and <= bytes present; IPv6 payload length <= bytes present; TCP data offset >= 5 and
 * within the datagram; UDP length >= 8 and within the datagram. IPv4 header checksum is NOT
 * verified (NICs and the kernel do; we fix it incrementally on rewrite). Frame padding beyond the
 * IP total length is allowed. Returns m->kind. Never reads outside [frame, frame + len). */
int ep_parse(const uint8_t *frame, uint32_t len, struct ep_meta *m);

/* RFC 1624 incremental checksum update: returns the new 16-bit one's complement checksum after a
 * 16/32-bit field changed from old to new. All values in network byte order as stored in the packet. */
uint16_t ep_csum_update16(uint16_t csum, uint16_t old_val, uint16_t new_val);
uint16_t ep_csum_update32(uint16_t csum, uint32_t old_val, uint32_t new_val);

/* Full checksums (for tests and for headers the data plane builds itself). */
uint16_t ep_ipv4_header_csum(const uint8_t *ip, uint32_t ihl_bytes);
/* TCP/UDP/ICMP checksum of an IPv4 datagram, computed from scratch (pseudo header for TCP/UDP). */
uint16_t ep_ipv4_l4_csum(const uint8_t *ip, uint32_t len);

/* NAT on an IPv4 TCP/UDP/ICMP-echo packet parsed into m. Each new_* value of 0 means "leave as is"
 * (addresses and ports in network order). Fixes the IPv4 header checksum and the L4 checksum
 * incrementally (UDP checksum 0 stays 0; a fixed UDP checksum that becomes 0 is written as 0xffff).
 * For ICMP echo the "port" is the identifier (src or dst port rewrites it). Updates m->key.
 * Returns 0, or -1 if m is not a rewritable IPv4 TCP/UDP/ICMP packet (fragments are refused). */
int ep_nat4(uint8_t *frame, struct ep_meta *m, uint32_t new_src, uint16_t new_sport,
	    uint32_t new_dst, uint16_t new_dport);

/* NAT of an exact-match TCP/UDP flow, split in two: ep_nat4_prepare folds the checksum changes
 * once, when the flow's affinity is installed (its key holds the old addresses and ports); every
 * packet then only stores the new values and adds the two prepared deltas (ep_nat4_prepared in
 * fast_path.h). new_* are final values (no "0 = keep"). */
void ep_nat4_prepare(const struct ep_flow_key *k, uint32_t new_src, uint16_t new_sport, uint32_t new_dst,
		     uint16_t new_dport, uint16_t *ip_delta, uint16_t *l4_delta);

/* Adds seq_delta to the TCP sequence number when it is at or after initial_seq, ack_delta to the
 * acknowledgement number when at or after initial_ack (serial-number arithmetic), fixing the TCP
 * checksum. Values in host order. No-op for non-TCP packets. */
void ep_tcp_seq_adjust(uint8_t *frame, const struct ep_meta *m, uint32_t seq_delta, uint32_t initial_seq,
		       uint32_t ack_delta, uint32_t initial_ack);

/* NAT of the addresses only (a fragment after the first: no L4 header; the first fragment's L4
 * checksum already accounts for the whole datagram). Fixes the IPv4 header checksum. */
void ep_nat4_addresses(uint8_t *frame, const struct ep_meta *m, uint32_t new_src, uint32_t new_dst);

/* ICMP errors (destination unreachable, time exceeded, parameter problem) quote the offending
 * packet's IP header and first 8 L4 bytes. ep_icmp4_quoted reads the quoted TCP/UDP 5-tuple
 * (addresses and ports in network order); -1 when m is no such error or the quote is cut short. */
int ep_icmp4_quoted(const uint8_t *frame, const struct ep_meta *m, struct ep_flow_key *quoted);
/* Rewrites an ICMP error for the server behind a NAT: the outer destination becomes new_dst and
 * the quoted packet's source new_qsrc:new_qsport and, when non-zero, its destination
 * new_qdst:new_qdport (full NAT), as the server sent it. Fixes the outer IP, quoted IP, quoted UDP
 * (when present and non-zero) and ICMP checksums. */
void ep_icmp4_error_nat(uint8_t *frame, struct ep_meta *m, uint32_t new_dst, uint32_t new_qsrc, uint16_t new_qsport,
			uint32_t new_qdst, uint16_t new_qdport);

/* Sets the IPv4 DSCP (keeping ECN) and fixes the header checksum. */
void ep_ipv4_set_dscp(uint8_t *frame, const struct ep_meta *m, uint8_t dscp);

/* Decrements the IPv4 TTL fixing the checksum; returns the new TTL (0 means the packet must die). */
uint8_t ep_ipv4_dec_ttl(uint8_t *frame, const struct ep_meta *m);

/* Writes an outer IPv4 header (20 bytes, DF clear, TTL 64, id 0) for IP-in-IP (proto 4) or GRE
 * (proto 47, followed by a 4-byte GRE header with protocol 0x0800) at out, carrying inner_len bytes
 * of inner IPv4 datagram. Returns the number of bytes written (20 or 24). */
#define EP_ENCAP_IPIP 4
#define EP_ENCAP_GRE 47
uint32_t ep_encap4_header(uint8_t *out, int kind, uint32_t src, uint32_t dst, uint32_t inner_len);

/* Writes outer IPv4 + UDP (checksum 0, as RFC 6936 allows for tunnels over IPv4) + a 4-byte GUE
 * header (version 0, protocol 4 = IPv4) carrying inner_len bytes. sport gives ECMP entropy.
 * Ports in network order. Returns 32, or 0 if the result would exceed 65535 bytes. */
#define EP_GUE_OVERHEAD 32
uint32_t ep_encap4_gue(uint8_t *out, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
		       uint32_t inner_len);

/* Local responders: both turn the received frame into the reply in place (swap MACs, write
 * own_mac as source) and return the reply length, or 0 when the frame is not a request they answer.
 * ARP: request for target IP == ip (any op other than request -> 0).
 * ICMP echo: IPv4 echo request to ip -> echo reply with correct checksums. */
uint32_t ep_arp_reply(uint8_t *frame, uint32_t len, const struct ep_meta *m,
		      const uint8_t own_mac[6], uint32_t ip);
/* ep_arp_reply saying that ip is at answer_mac (a MAC the cluster members share), sent from own_mac:
 * an Ethernet source must be the sender's own unicast address. */
uint32_t ep_arp_reply_as(uint8_t *frame, uint32_t len, const struct ep_meta *m, const uint8_t own_mac[6],
			 const uint8_t answer_mac[6], uint32_t ip);
uint32_t ep_icmp_echo_reply(uint8_t *frame, uint32_t len, const struct ep_meta *m,
			    const uint8_t own_mac[6]);

/* Builds a broadcast ARP request (42 bytes) asking for target_ip into out (>= 60 bytes, zero pad
 * to 60). Returns the frame length (60). */
uint32_t ep_arp_request(uint8_t *out, const uint8_t src_mac[6], uint32_t src_ip, uint32_t target_ip);

/* For ARP frames: sender IP and MAC (for neighbour learning). Returns 0 or -1 if not IPv4-over-Ethernet ARP. */
int ep_arp_sender(const uint8_t *frame, const struct ep_meta *m, uint32_t *ip, uint8_t mac[6]);
uint16_t ep_arp_op(const uint8_t *frame, const struct ep_meta *m);
uint32_t ep_arp_target_ip(const uint8_t *frame, const struct ep_meta *m);

#endif
