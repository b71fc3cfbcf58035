/* Outer headers for tunnel dispatch of IPv6 packets over IPv6: IPv6-in-IPv6 (RFC 2473), GRE
 * (RFC 2784 over IPv6, RFC 7676, no options) and GUE (draft-ietf-intarea-gue, variant 0, no
 * optional fields) with the UDP checksum that IPv6 requires (RFC 8200 8.1).
 *
 * Sums are taken over 16-bit words as they sit in memory, like packet6.c: the one's complement sum
 * does not depend on byte order, so results are stored as computed. */
#include <netinet/in.h>
#include <string.h>

#include "packet6.h"
#include "words.h"

#define IP6_HDR_LEN 40
#define IP6_PAYLOAD_LEN 4
#define IP6_NEXT_HDR 6
#define IP6_HOP_LIMIT 7
#define IP6_SRC 8
#define IP6_DST 24
#define OUTER_HOP_LIMIT 64
#define GRE_HDR_LEN 4
#define UDP_HDR_LEN 8
#define GUE_HDR_LEN 4
#define ETHERTYPE_IPV6 0x86dd
#define FLOW_LABEL_MASK 0xfffffu

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Version 6, traffic class 0 (a QoS mark is set afterwards), flow label, payload length, next
 * header, hop limit 64, addresses. */
static void write_ipv6(uint8_t *out, const uint8_t src[16], const uint8_t dst[16], uint32_t flow_label,
		       uint32_t payload_len, uint8_t next_header)
{
	flow_label &= FLOW_LABEL_MASK;
	out[0] = 0x60;
	out[1] = (uint8_t)(flow_label >> 16);
	out[2] = (uint8_t)(flow_label >> 8);
	out[3] = (uint8_t)flow_label;
	put_be16(out + IP6_PAYLOAD_LEN, (uint16_t)payload_len);
	out[IP6_NEXT_HDR] = next_header;
	out[IP6_HOP_LIMIT] = OUTER_HOP_LIMIT;
	memcpy(out + IP6_SRC, src, 16);
	memcpy(out + IP6_DST, dst, 16);
}

uint32_t ep_encap6_header(uint8_t *out, int kind, const uint8_t src[16], const uint8_t dst[16], uint32_t flow_label,
			  uint32_t inner_len)
{
	uint32_t extra = kind == EP_ENCAP_GRE ? GRE_HDR_LEN : 0;
	/* Refused (0) rather than written with a wrapped payload length: IPv6 jumbograms are not built. */
	if ((kind != EP_ENCAP_IPV6 && kind != EP_ENCAP_GRE) || inner_len > UINT16_MAX - extra)
		return 0;
	write_ipv6(out, src, dst, flow_label, extra + inner_len, (uint8_t)kind);
	if (kind == EP_ENCAP_GRE) {
		/* No checksum, key or sequence bits, version 0; the payload is IPv6. */
		const uint8_t gre[GRE_HDR_LEN] = { 0, 0, ETHERTYPE_IPV6 >> 8, ETHERTYPE_IPV6 & 0xff };
		memcpy(out + IP6_HDR_LEN, gre, sizeof(gre));
	}
	return IP6_HDR_LEN + extra;
}

uint32_t ep_encap6_gue(uint8_t *out, const uint8_t src[16], const uint8_t dst[16], uint32_t flow_label,
		       uint16_t sport, uint16_t dport, uint32_t inner_len, uint32_t inner_sum)
{
	const uint32_t udp_len = UDP_HDR_LEN + GUE_HDR_LEN + inner_len;
	if (inner_len > UINT16_MAX - UDP_HDR_LEN - GUE_HDR_LEN)
		return 0;
	write_ipv6(out, src, dst, flow_label, udp_len, IPPROTO_UDP);
	uint8_t *udp = out + IP6_HDR_LEN;
	store16(udp, sport);
	store16(udp + 2, dport);
	put_be16(udp + 4, (uint16_t)udp_len);
	store16(udp + 6, 0);
	/* Version 0, no flags, protocol 41: the payload is IPv6. */
	const uint8_t gue[GUE_HDR_LEN] = { 0x00, IPPROTO_IPV6, 0x00, 0x00 };
	memcpy(udp + UDP_HDR_LEN, gue, sizeof(gue));
	/* pseudo header (addresses, upper-layer length, next header), UDP + GUE headers, the payload */
	const uint8_t pseudo[8] = { 0, 0, (uint8_t)(udp_len >> 8), (uint8_t)udp_len, 0, 0, 0, IPPROTO_UDP };
	uint32_t acc = sum_words(out + IP6_SRC, 32, 0);
	acc = sum_words(pseudo, sizeof(pseudo), acc);
	acc = sum_words(udp, UDP_HDR_LEN + GUE_HDR_LEN, acc);
	acc += fold(inner_sum);
	uint16_t csum = (uint16_t)~fold(acc);
	store16(udp + 6, csum ? csum : 0xffff); /* 0 would mean "no checksum", invalid over IPv6 */
	return EP_GUE6_OVERHEAD;
}

int ep_ipv6_packet_sum(const uint8_t *frame, const struct ep_meta *m, uint32_t *sum)
{
	if (m->kind != EP_PKT_IPV6 || m->l4_off != m->l3_off + IP6_HDR_LEN || (m->flags & EP_META_FRAGMENT))
		return -1; /* extension headers (a routing header changes the pseudo header), no L4 header */
	const uint8_t *ip = frame + m->l3_off, *l4 = frame + m->l4_off;
	uint32_t l4_len = (uint32_t)m->l3_len - IP6_HDR_LEN;
	switch (ip[IP6_NEXT_HDR]) {
	case IPPROTO_TCP:
	case IPPROTO_ICMPV6:
		break;
	case IPPROTO_UDP:
		if (load16(l4 + 6) == 0)
			return -1; /* no checksum to derive from */
		break;
	default:
		return -1;
	}
	/* A valid L4 checksum makes pseudo header + segment sum to -0, so the segment sums to the
	 * complement of the pseudo header. */
	const uint8_t pseudo[8] = { (uint8_t)(l4_len >> 24), (uint8_t)(l4_len >> 16), (uint8_t)(l4_len >> 8),
				    (uint8_t)l4_len, 0, 0, 0, ip[IP6_NEXT_HDR] };
	uint32_t pseudo_sum = sum_words(pseudo, sizeof(pseudo), sum_words(ip + IP6_SRC, 32, 0));
	*sum = sum_words(ip, IP6_HDR_LEN, 0) + (uint16_t)~fold(pseudo_sum);
	return 0;
}
