/* ep_parse: one pass over the headers of a frame into struct ep_meta.
 *
 * Fields are read with memcpy at offsetof() positions of DPDK's header structs rather than through
 * struct pointers: some of those structs are declared 2-byte aligned and a frame may sit anywhere. */
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "packet.h"

/* Our own names: DPDK renamed its ICMP type macros after 22.11 and deprecated the old ones. */
#define ICMP4_ECHO_REQUEST 8
#define ICMP4_ECHO_REPLY 0
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129

#define IPV4_MIN_HDR_LEN sizeof(struct rte_ipv4_hdr)
#define IPV6_HDR_LEN sizeof(struct rte_ipv6_hdr)
/* Byte offsets inside struct rte_ipv6_hdr; addresses by offset because their type changed in 24.11. */
#define IPV6_PAYLOAD_LEN_OFF offsetof(struct rte_ipv6_hdr, payload_len)
#define IPV6_NEXT_HDR_OFF offsetof(struct rte_ipv6_hdr, proto)
#define IPV6_SRC_OFF 8
#define IPV6_DST_OFF 24
#define IPV6_FRAG_HDR_LEN 8
#define IPV6_FRAG_OFFSET_MASK 0xfff8
/* Each extension header costs a loop iteration on the fast path: a chain longer than any real
 * sender uses is refused so a flood of such packets cannot slow a worker down. */
#define IPV6_MAX_EXT_HDRS 8
/* An mbuf segment holds at most this many bytes; the uint16_t offsets in ep_meta rely on it. */
#define MAX_FRAME_LEN UINT16_MAX

static inline uint16_t load_be16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return rte_be_to_cpu_16(v);
}

static inline uint16_t load_raw16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static int drop(struct ep_meta *m, enum ep_drop_reason reason)
{
	m->kind = EP_PKT_DROP;
	m->drop = (uint8_t)reason;
	return EP_PKT_DROP;
}

/* The L4 header at l4 inside a datagram ending at end. A fragment's UDP length describes the
 * reassembled datagram, so only its lower bound can be checked here. */
static int parse_l4(const uint8_t *frame, uint32_t l4, uint32_t end, bool fragment,
		    struct ep_meta *m)
{
	const uint8_t *h = frame + l4;
	uint32_t avail = end - l4;

	switch (m->key.proto) {
	case IPPROTO_TCP: {
		if (unlikely(avail < sizeof(struct rte_tcp_hdr)))
			return drop(m, EP_DROP_TRUNCATED_L4);
		uint32_t hdr_len = (h[offsetof(struct rte_tcp_hdr, data_off)] >> 4) * 4u;
		if (unlikely(hdr_len < sizeof(struct rte_tcp_hdr) || hdr_len > avail))
			return drop(m, EP_DROP_BAD_L4_HEADER);
		m->tcp_flags = h[offsetof(struct rte_tcp_hdr, tcp_flags)] & 0x3f;
		m->key.sport = load_raw16(h + offsetof(struct rte_tcp_hdr, src_port));
		m->key.dport = load_raw16(h + offsetof(struct rte_tcp_hdr, dst_port));
		m->l4_off = (uint16_t)l4;
		m->payload_off = (uint16_t)(l4 + hdr_len);
		return m->kind;
	}
	case IPPROTO_UDP: {
		if (unlikely(avail < sizeof(struct rte_udp_hdr)))
			return drop(m, EP_DROP_TRUNCATED_L4);
		uint32_t udp_len = load_be16(h + offsetof(struct rte_udp_hdr, dgram_len));
		if (unlikely(udp_len < sizeof(struct rte_udp_hdr) || (udp_len > avail && !fragment)))
			return drop(m, EP_DROP_BAD_L4_HEADER);
		m->key.sport = load_raw16(h + offsetof(struct rte_udp_hdr, src_port));
		m->key.dport = load_raw16(h + offsetof(struct rte_udp_hdr, dst_port));
		m->l4_off = (uint16_t)l4;
		m->payload_off = (uint16_t)(l4 + sizeof(struct rte_udp_hdr));
		return m->kind;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		/* Every ICMP message has at least type, code, checksum and 4 more bytes. */
		bool v4 = m->key.family == 4;
		/* ICMPv6 inside IPv4 (or the reverse) is an unknown protocol, not ICMP. */
		if ((m->key.proto == IPPROTO_ICMP) != v4)
			return m->kind;
		if (unlikely(avail < sizeof(struct rte_icmp_hdr)))
			return drop(m, EP_DROP_TRUNCATED_L4);
		uint8_t type = h[offsetof(struct rte_icmp_hdr, icmp_type)];
		uint16_t ident = load_raw16(h + offsetof(struct rte_icmp_hdr, icmp_ident));
		/* Request: id as source port, reply: id as destination port, so that the key of a
		 * reply is the reverse of its request's key. */
		if (type == (v4 ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST))
			m->key.sport = ident;
		else if (type == (v4 ? ICMP4_ECHO_REPLY : ICMP6_ECHO_REPLY))
			m->key.dport = ident;
		m->l4_off = (uint16_t)l4;
		m->payload_off = (uint16_t)(l4 + sizeof(struct rte_icmp_hdr));
		return m->kind;
	}
	default:
		return m->kind;
	}
}

static int parse_ipv4(const uint8_t *frame, uint32_t len, uint32_t l3, struct ep_meta *m)
{
	const uint8_t *ip = frame + l3;
	uint32_t avail = len - l3;

	if (unlikely(avail < IPV4_MIN_HDR_LEN))
		return drop(m, EP_DROP_TRUNCATED_L3);
	uint8_t version_ihl = ip[offsetof(struct rte_ipv4_hdr, version_ihl)];
	if (unlikely((version_ihl >> 4) != 4))
		return drop(m, EP_DROP_BAD_IP_VERSION);
	uint32_t hdr_len = (version_ihl & 0x0f) * 4u;
	uint32_t total = load_be16(ip + offsetof(struct rte_ipv4_hdr, total_length));
	if (unlikely(total > avail))
		return drop(m, EP_DROP_BAD_IP_TOTAL_LEN);
	if (unlikely(hdr_len < IPV4_MIN_HDR_LEN || hdr_len > total))
		return drop(m, EP_DROP_BAD_IP_HEADER_LEN);

	uint16_t frag = load_be16(ip + offsetof(struct rte_ipv4_hdr, fragment_offset));
	bool fragment = (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0;
	m->kind = EP_PKT_IPV4;
	m->flags |= (fragment ? EP_META_FRAGMENT : 0) |
		    (hdr_len > IPV4_MIN_HDR_LEN ? EP_META_IP_OPTIONS : 0);
	m->l3_len = (uint16_t)total;
	m->key.family = 4;
	m->key.proto = ip[offsetof(struct rte_ipv4_hdr, next_proto_id)];
	memcpy(m->key.src, ip + offsetof(struct rte_ipv4_hdr, src_addr), 4);
	memcpy(m->key.dst, ip + offsetof(struct rte_ipv4_hdr, dst_addr), 4);

	/* Only the first fragment carries the L4 header. */
	if (unlikely(frag & RTE_IPV4_HDR_OFFSET_MASK))
		return m->kind;
	return parse_l4(frame, l3 + hdr_len, l3 + total, fragment, m);
}

static int parse_ipv6(const uint8_t *frame, uint32_t len, uint32_t l3, struct ep_meta *m)
{
	const uint8_t *ip = frame + l3;
	uint32_t avail = len - l3;

	if (unlikely(avail < IPV6_HDR_LEN))
		return drop(m, EP_DROP_TRUNCATED_L3);
	if (unlikely((ip[0] >> 4) != 6))
		return drop(m, EP_DROP_BAD_IP_VERSION);
	uint32_t total = IPV6_HDR_LEN + load_be16(ip + IPV6_PAYLOAD_LEN_OFF);
	if (unlikely(total > avail))
		return drop(m, EP_DROP_BAD_IP_TOTAL_LEN);

	m->kind = EP_PKT_IPV6;
	m->l3_len = (uint16_t)total;
	m->key.family = 6;
	memcpy(m->key.src, ip + IPV6_SRC_OFF, 16);
	memcpy(m->key.dst, ip + IPV6_DST_OFF, 16);

	uint32_t end = l3 + total;
	uint32_t off = l3 + IPV6_HDR_LEN;
	uint8_t next = ip[IPV6_NEXT_HDR_OFF];
	bool fragment = false;
	for (int n = 0;; n++) {
		uint32_t ext_len;
		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (unlikely(end - off < 2))
				return drop(m, EP_DROP_BAD_IP_HEADER_LEN);
			ext_len = (frame[off + 1] + 1u) * 8u;
			break;
		case IPPROTO_FRAGMENT:
			ext_len = IPV6_FRAG_HDR_LEN;
			break;
		default:
			m->key.proto = next;
			return parse_l4(frame, off, end, fragment, m);
		}
		if (unlikely(n == IPV6_MAX_EXT_HDRS || ext_len > end - off))
			return drop(m, EP_DROP_BAD_IP_HEADER_LEN);
		if (next == IPPROTO_FRAGMENT) {
			fragment = true;
			m->flags |= EP_META_FRAGMENT;
			/* Only the first fragment carries the L4 header. */
			if (load_be16(frame + off + 2) & IPV6_FRAG_OFFSET_MASK) {
				m->key.proto = frame[off];
				return m->kind;
			}
		}
		next = frame[off];
		off += ext_len;
	}
}

static int parse_arp(uint32_t len, uint32_t l3, struct ep_meta *m)
{
	/* Only Ethernet/IPv4 ARP is answered; the ep_arp_* accessors check the address formats. */
	if (unlikely(len - l3 < sizeof(struct rte_arp_hdr)))
		return drop(m, EP_DROP_TRUNCATED_L3);
	m->kind = EP_PKT_ARP;
	m->l3_len = sizeof(struct rte_arp_hdr);
	return m->kind;
}

#define MAX_MPLS_LABELS 8

int ep_parse(const uint8_t *frame, uint32_t len, struct ep_meta *m)
{
	memset(m, 0, sizeof(*m));
	/* Bytes beyond what one mbuf segment can hold are treated like padding. */
	if (unlikely(len > MAX_FRAME_LEN))
		len = MAX_FRAME_LEN;
	if (unlikely(len < RTE_ETHER_HDR_LEN))
		return drop(m, EP_DROP_TRUNCATED_L2);

	uint32_t l3 = RTE_ETHER_HDR_LEN;
	uint16_t ether_type = load_raw16(frame + offsetof(struct rte_ether_hdr, ether_type));
	if (unlikely(ether_type == RTE_BE16(RTE_ETHER_TYPE_VLAN))) {
		if (len < RTE_ETHER_HDR_LEN + sizeof(struct rte_vlan_hdr))
			return drop(m, EP_DROP_TRUNCATED_L2);
		const uint8_t *tag = frame + RTE_ETHER_HDR_LEN;
		m->flags = EP_META_VLAN;
		m->vlan_tci = load_be16(tag + offsetof(struct rte_vlan_hdr, vlan_tci));
		ether_type = load_raw16(tag + offsetof(struct rte_vlan_hdr, eth_proto));
		l3 += sizeof(struct rte_vlan_hdr);
	}
	if (unlikely(ether_type == RTE_BE16(RTE_ETHER_TYPE_MPLS))) {
		/* a labelled packet: skip to the bottom of the stack and tell IP by its version nibble */
		uint8_t bottom = 0;
		while (!bottom) {
			if (m->mpls_depth == MAX_MPLS_LABELS)
				return drop(m, EP_DROP_BAD_L2_HEADER);
			if (len < l3 + 4)
				return drop(m, EP_DROP_TRUNCATED_L2);
			bottom = frame[l3 + 2] & 0x01;
			l3 += 4;
			m->mpls_depth++;
		}
		if (len < l3 + 1)
			return drop(m, EP_DROP_TRUNCATED_L3);
		m->flags |= EP_META_MPLS;
		uint8_t version = frame[l3] >> 4;
		ether_type = version == 4 ? RTE_BE16(RTE_ETHER_TYPE_IPV4)
			   : version == 6 ? RTE_BE16(RTE_ETHER_TYPE_IPV6)
					  : 0;
	}
	m->l3_off = (uint16_t)l3;

	if (likely(ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4)))
		return parse_ipv4(frame, len, l3, m);
	if (ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV6))
		return parse_ipv6(frame, len, l3, m);
	if (ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP))
		return parse_arp(len, l3, m);
	m->kind = EP_PKT_OTHER;
	return m->kind;
}
