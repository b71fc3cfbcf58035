/* IPv6 header rewriting and the IPv6 local responders (neighbour discovery, ICMPv6 echo) on raw
 * frame bytes parsed by ep_parse, testable and fuzzable without an EAL like packet.h. Addresses
 * are 16 bytes in network order, ports in network order. */
#ifndef EP_PACKET6_H
#define EP_PACKET6_H

#include <stdint.h>

#include "packet.h"

#define EP_ICMP6_ECHO_REQUEST 128
#define EP_ICMP6_ECHO_REPLY 129
#define EP_ND_NEIGHBOR_SOLICIT 135
#define EP_ND_NEIGHBOR_ADVERT 136
/* An NS with its source link-layer option: Ethernet + IPv6 + ICMPv6 NS (24) + option (8). */
#define EP_NDP_FRAME_LEN (14 + 40 + 32)

/* TCP/UDP/ICMPv6 checksum of l4_len bytes at l4 under the IPv6 header ip6 (pseudo header from its
 * addresses), computed from scratch with the 2 bytes at csum_off treated as zero. Returned as it
 * is stored in the packet. */
uint16_t ep_ipv6_l4_csum(const uint8_t *ip6, const uint8_t *l4, uint32_t l4_len, uint8_t proto, uint32_t csum_off);

/* NAT66 on an IPv6 TCP/UDP/ICMPv6-echo packet parsed into m: new_src/new_dst NULL and ports 0
 * leave a field as is. The L4 checksum (which covers the addresses through the pseudo header) is
 * fixed incrementally; a UDP checksum of 0 (invalid over IPv6) stays 0. For ICMPv6 echo the "port"
 * is the identifier. Updates m->key. Returns 0, or -1 if m has no rewritable L4 header (a later
 * fragment, another protocol). IPv6 has no header checksum; the hop limit is not touched. */
int ep_nat6(uint8_t *frame, struct ep_meta *m, const uint8_t *new_src, uint16_t new_sport, const uint8_t *new_dst,
	    uint16_t new_dport);

/* NAT66 of the addresses only, for a fragment after the first (no L4 header; the first fragment's
 * L4 checksum covers the whole datagram). new_src/new_dst NULL leave it. Updates m->key. */
void ep_nat6_addresses(uint8_t *frame, struct ep_meta *m, const uint8_t *new_src, const uint8_t *new_dst);

/* The Identification of an IPv6 fragment (m has EP_META_FRAGMENT); -1 when there is no fragment
 * header (ep_parse validated the extension header chain). */
int ep_ipv6_fragment_id(const uint8_t *frame, const struct ep_meta *m, uint32_t *id);

/* ICMPv6 errors (destination unreachable, packet too big, time exceeded, parameter problem) quote
 * the offending packet from its IPv6 header. ep_icmp6_quoted reads the quoted TCP/UDP 5-tuple (the
 * L4 header right after the quoted IPv6 header); -1 when m is no such error or the quote is short. */
int ep_icmp6_quoted(const uint8_t *frame, const struct ep_meta *m, struct ep_flow_key *quoted);
/* Rewrites an ICMPv6 error for the server behind NAT66: the outer destination becomes new_dst, the
 * quoted packet's source new_qsrc:new_qsport and, when non-NULL, its destination
 * new_qdst:new_qdport (full NAT), as the server sent it. Fixes the quoted L4 checksum when it is in
 * the quote (UDP: when non-zero) and the ICMPv6 checksum; updates m->key.dst. */
void ep_icmp6_error_nat(uint8_t *frame, struct ep_meta *m, const uint8_t *new_dst, const uint8_t *new_qsrc,
			uint16_t new_qsport, const uint8_t *new_qdst, uint16_t new_qdport);

/* Sets the traffic class's DSCP (ECN kept). */
void ep_ipv6_set_dscp(uint8_t *frame, const struct ep_meta *m, uint8_t dscp);
/* Decrements the IPv6 hop limit; returns the new value (0 means the packet must die). */
uint8_t ep_ipv6_dec_hop_limit(uint8_t *frame, const struct ep_meta *m);

/* Tunnels over IPv6 (encap6.c), for IPv6 packets to a server in a tunnel mode. The outer header
 * has traffic class 0, hop limit 64 and the given flow label (20 bits: entropy for ECMP paths).
 * ep_encap6_header writes IPv6-in-IPv6 (next header 41) or GRE (next header 47 and a 4-byte GRE
 * header with protocol 0x86DD, no options) at out for inner_len bytes of inner IPv6 packet;
 * returns the bytes written (40 or 44), or 0 for another kind or a payload length over 65535. */
#define EP_ENCAP_IPV6 41
#define EP_ENCAP6_IPIP_OVERHEAD 40
#define EP_ENCAP6_GRE_OVERHEAD 44
uint32_t ep_encap6_header(uint8_t *out, int kind, const uint8_t src[16], const uint8_t dst[16], uint32_t flow_label,
			  uint32_t inner_len);

/* Outer IPv6 + UDP (sport, dport in network order) + GUE header (variant 0, no flags, protocol 41)
 * for inner_len bytes whose one's complement sum (unfolded is fine) is inner_sum. Unlike over IPv4
 * the UDP checksum is computed: IPv6 requires it. Returns EP_GUE6_OVERHEAD, or 0 when the UDP
 * length would exceed 65535. */
#define EP_GUE6_OVERHEAD 52
uint32_t ep_encap6_gue(uint8_t *out, const uint8_t src[16], const uint8_t dst[16], uint32_t flow_label,
		       uint16_t sport, uint16_t dport, uint32_t inner_len, uint32_t inner_sum);

/* The one's complement sum of the IPv6 packet parsed into m (its l3_len bytes) for the GUE
 * checksum, read off its TCP/UDP/ICMPv6 checksum instead of summing the payload: the 40 header
 * bytes plus the complement of the pseudo header. Exact when that checksum is valid (a packet with
 * a bad one gets a bad outer checksum, and the server drops it as it would have anyway). -1 when
 * it cannot be derived (extension headers, fragments, other protocols, UDP checksum 0): the caller
 * sums the bytes. */
int ep_ipv6_packet_sum(const uint8_t *frame, const struct ep_meta *m, uint32_t *sum);

/* A neighbour solicitation or advertisement that passed RFC 4861 7.1.1/7.1.2 validation (hop
 * limit 255, code 0, length, checksum, option lengths, no multicast target). */
struct ep_ndp {
	uint8_t type;       /* EP_ND_NEIGHBOR_SOLICIT or EP_ND_NEIGHBOR_ADVERT */
	uint8_t has_lladdr; /* NS: source link-layer option present; NA: target link-layer option */
	uint8_t lladdr[6];
	uint8_t target[16];
	uint8_t src[16]; /* the IPv6 source (:: for duplicate address detection) */
};

/* Whether m is ICMPv6 neighbour discovery (NS/NA) by its type byte, before validation. */
int ep_is_ndp(const uint8_t *frame, const struct ep_meta *m);
/* Validates and reads an NS/NA; -1 with nothing written to out when invalid. */
int ep_ndp_parse(const uint8_t *frame, const struct ep_meta *m, struct ep_ndp *out);
/* Turns the received NS (parsed into ns) into the solicited advertisement of ns->target in place,
 * from own_mac (Ethernet source), with answer_mac as the target link-layer option (the port's own,
 * or a MAC cluster members share); to the solicitor, or to all nodes when it solicited from ::.
 * Returns the frame length, or 0 when cap is too small. */
uint32_t ep_ndp_advert(uint8_t *frame, uint32_t cap, const struct ep_meta *m, const struct ep_ndp *ns,
		       const uint8_t own_mac[6], const uint8_t answer_mac[6]);
/* Builds a multicast NS for target (to its solicited-node address) into out (>= EP_NDP_FRAME_LEN
 * bytes). Returns EP_NDP_FRAME_LEN. */
uint32_t ep_ndp_solicit(uint8_t *out, const uint8_t src_mac[6], const uint8_t src_ip[16], const uint8_t target[16]);

/* ICMPv6 echo request -> echo reply in place (addresses and MACs swapped, hop limit 64, checksum
 * fixed). Returns the frame length, or 0 when m is no echo request it answers. */
uint32_t ep_icmp6_echo_reply(uint8_t *frame, uint32_t len, const struct ep_meta *m, const uint8_t own_mac[6]);

#endif
