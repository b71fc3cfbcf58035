/* Outer headers for tunnel dispatch: IP-in-IP (RFC 2003), GRE (RFC 2784, no options) and GUE
 * (draft-ietf-intarea-gue, variant 0, no optional fields). */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "packet.h"

#define GRE_HDR_LEN 4
#define OUTER_TTL 64
#define IPV4_VERSION_IHL_NO_OPTIONS 0x45

uint32_t ep_encap4_header(uint8_t *out, int kind, uint32_t src, uint32_t dst, uint32_t inner_len)
{
	uint32_t hdr_len = sizeof(struct rte_ipv4_hdr) + (kind == EP_ENCAP_GRE ? GRE_HDR_LEN : 0);
	/* Refused (0) rather than written with a wrapped total length. */
	if (unlikely((kind != EP_ENCAP_IPIP && kind != EP_ENCAP_GRE) ||
		     inner_len > UINT16_MAX - hdr_len))
		return 0;

	struct rte_ipv4_hdr ip = {
		.version_ihl = IPV4_VERSION_IHL_NO_OPTIONS,
		.total_length = rte_cpu_to_be_16((uint16_t)(hdr_len + inner_len)),
		.time_to_live = OUTER_TTL,
		.next_proto_id = (uint8_t)kind,
		.src_addr = src,
		.dst_addr = dst,
	};
	memcpy(out, &ip, sizeof(ip));
	uint16_t csum = ep_ipv4_header_csum(out, sizeof(ip));
	memcpy(out + offsetof(struct rte_ipv4_hdr, hdr_checksum), &csum, sizeof(csum));
	if (kind == EP_ENCAP_GRE) {
		/* No checksum, key or sequence bits, version 0; the payload is IPv4. */
		const uint8_t gre[GRE_HDR_LEN] = {0, 0, RTE_ETHER_TYPE_IPV4 >> 8,
						  RTE_ETHER_TYPE_IPV4 & 0xff};
		memcpy(out + sizeof(ip), gre, sizeof(gre));
	}
	return hdr_len;
}

uint32_t ep_encap4_gue(uint8_t *out, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t inner_len)
{
	const uint32_t udp_len = sizeof(struct rte_udp_hdr) + 4 + inner_len;
	if (unlikely(inner_len > UINT16_MAX - EP_GUE_OVERHEAD))
		return 0;
	struct rte_ipv4_hdr ip = {
		.version_ihl = IPV4_VERSION_IHL_NO_OPTIONS,
		.total_length = rte_cpu_to_be_16((uint16_t)(sizeof(ip) + udp_len)),
		.time_to_live = OUTER_TTL,
		.next_proto_id = IPPROTO_UDP,
		.src_addr = src,
		.dst_addr = dst,
	};
	memcpy(out, &ip, sizeof(ip));
	uint16_t csum = ep_ipv4_header_csum(out, sizeof(ip));
	memcpy(out + offsetof(struct rte_ipv4_hdr, hdr_checksum), &csum, sizeof(csum));
	struct rte_udp_hdr udp = {
		.src_port = sport,
		.dst_port = dport,
		.dgram_len = rte_cpu_to_be_16((uint16_t)udp_len),
		.dgram_cksum = 0,
	};
	memcpy(out + sizeof(ip), &udp, sizeof(udp));
	const uint8_t gue[4] = { 0x00, IPPROTO_IPIP, 0x00, 0x00 };
	memcpy(out + sizeof(ip) + sizeof(udp), gue, sizeof(gue));
	return EP_GUE_OVERHEAD;
}
