/* ARP and ICMP echo for the data plane's own addresses, answered in place in the received frame.
 * These are not on the forwarding fast path, so clarity wins over cycles here. */
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include "packet.h"

#define ICMP4_ECHO_REQUEST 8
#define ICMP4_ECHO_REPLY 0
#define REPLY_TTL 64
/* Shortest Ethernet frame without its FCS. */
#define ETH_MIN_FRAME_LEN (RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN)

#define ARP_FIELD(f) offsetof(struct rte_arp_hdr, f)
#define ARP_ADDR(f) (offsetof(struct rte_arp_hdr, arp_data) + offsetof(struct rte_arp_ipv4, f))
#define ETH_DST offsetof(struct rte_ether_hdr, dst_addr)
#define ETH_SRC offsetof(struct rte_ether_hdr, src_addr)
#define ETH_TYPE offsetof(struct rte_ether_hdr, ether_type)

static inline uint16_t load_be16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return rte_be_to_cpu_16(v);
}

static inline void store_be16(uint8_t *p, uint16_t v)
{
	v = rte_cpu_to_be_16(v);
	memcpy(p, &v, sizeof(v));
}

/* The only ARP flavour with the fixed layout of struct rte_arp_ipv4. */
static bool is_ether_ipv4_arp(const uint8_t *frame, const struct ep_meta *m)
{
	if (m->kind != EP_PKT_ARP)
		return false;
	const uint8_t *arp = frame + m->l3_off;
	return load_be16(arp + ARP_FIELD(arp_hardware)) == RTE_ARP_HRD_ETHER &&
	       load_be16(arp + ARP_FIELD(arp_protocol)) == RTE_ETHER_TYPE_IPV4 &&
	       arp[ARP_FIELD(arp_hlen)] == RTE_ETHER_ADDR_LEN && arp[ARP_FIELD(arp_plen)] == 4;
}

/* Back to the sender, from us. */
static void address_reply(uint8_t *frame, const uint8_t own_mac[6])
{
	memmove(frame + ETH_DST, frame + ETH_SRC, RTE_ETHER_ADDR_LEN);
	memcpy(frame + ETH_SRC, own_mac, RTE_ETHER_ADDR_LEN);
}

/* A reply shorter than the Ethernet minimum is padded with zeros, as far as the received frame
 * reaches, rather than carrying on whatever followed the request. */
static uint32_t pad_to_min(uint8_t *frame, uint32_t len, uint32_t reply_len)
{
	uint32_t padded = len < ETH_MIN_FRAME_LEN ? len : ETH_MIN_FRAME_LEN;
	if (reply_len >= padded)
		return reply_len;
	memset(frame + reply_len, 0, padded - reply_len);
	return padded;
}

uint32_t ep_arp_reply(uint8_t *frame, uint32_t len, const struct ep_meta *m,
		      const uint8_t own_mac[6], uint32_t ip)
{
	return ep_arp_reply_as(frame, len, m, own_mac, own_mac, ip);
}

uint32_t ep_arp_reply_as(uint8_t *frame, uint32_t len, const struct ep_meta *m, const uint8_t own_mac[6],
			 const uint8_t answer_mac[6], uint32_t ip)
{
	if (!is_ether_ipv4_arp(frame, m) || ep_arp_op(frame, m) != RTE_ARP_OP_REQUEST ||
	    ep_arp_target_ip(frame, m) != ip)
		return 0;

	uint8_t *arp = frame + m->l3_off;
	memcpy(arp + ARP_ADDR(arp_tha), arp + ARP_ADDR(arp_sha), RTE_ETHER_ADDR_LEN);
	memcpy(arp + ARP_ADDR(arp_tip), arp + ARP_ADDR(arp_sip), 4);
	memcpy(arp + ARP_ADDR(arp_sha), answer_mac, RTE_ETHER_ADDR_LEN);
	memcpy(arp + ARP_ADDR(arp_sip), &ip, 4);
	store_be16(arp + ARP_FIELD(arp_opcode), RTE_ARP_OP_REPLY);
	address_reply(frame, own_mac);
	return pad_to_min(frame, len, m->l3_off + (uint32_t)sizeof(struct rte_arp_hdr));
}

uint32_t ep_icmp_echo_reply(uint8_t *frame, uint32_t len, const struct ep_meta *m,
			    const uint8_t own_mac[6])
{
	/* A fragmented request cannot be answered from one fragment. */
	if (m->kind != EP_PKT_IPV4 || m->key.proto != IPPROTO_ICMP || m->l4_off == 0 ||
	    (m->flags & EP_META_FRAGMENT))
		return 0;
	uint8_t *ip = frame + m->l3_off;
	uint8_t *icmp = frame + m->l4_off;
	uint16_t csum;
	memcpy(&csum, icmp + offsetof(struct rte_icmp_hdr, icmp_cksum), sizeof(csum));
	/* A corrupted request gets no answer, like from any host stack. */
	if (icmp[offsetof(struct rte_icmp_hdr, icmp_type)] != ICMP4_ECHO_REQUEST ||
	    ep_ipv4_l4_csum(ip, m->l3_len) != csum)
		return 0;

	icmp[offsetof(struct rte_icmp_hdr, icmp_type)] = ICMP4_ECHO_REPLY;
	icmp[offsetof(struct rte_icmp_hdr, icmp_code)] = 0;
	csum = ep_ipv4_l4_csum(ip, m->l3_len);
	memcpy(icmp + offsetof(struct rte_icmp_hdr, icmp_cksum), &csum, sizeof(csum));

	uint8_t addr[4];
	memcpy(addr, ip + offsetof(struct rte_ipv4_hdr, src_addr), 4);
	memmove(ip + offsetof(struct rte_ipv4_hdr, src_addr),
		ip + offsetof(struct rte_ipv4_hdr, dst_addr), 4);
	memcpy(ip + offsetof(struct rte_ipv4_hdr, dst_addr), addr, 4);
	ip[offsetof(struct rte_ipv4_hdr, time_to_live)] = REPLY_TTL;
	csum = ep_ipv4_header_csum(ip, m->l4_off - m->l3_off);
	memcpy(ip + offsetof(struct rte_ipv4_hdr, hdr_checksum), &csum, sizeof(csum));

	address_reply(frame, own_mac);
	return pad_to_min(frame, len, (uint32_t)m->l3_off + m->l3_len);
}

uint32_t ep_arp_request(uint8_t *out, const uint8_t src_mac[6], uint32_t src_ip, uint32_t target_ip)
{
	uint8_t *arp = out + RTE_ETHER_HDR_LEN;

	memset(out, 0, ETH_MIN_FRAME_LEN);
	memset(out + ETH_DST, 0xff, RTE_ETHER_ADDR_LEN);
	memcpy(out + ETH_SRC, src_mac, RTE_ETHER_ADDR_LEN);
	store_be16(out + ETH_TYPE, RTE_ETHER_TYPE_ARP);
	store_be16(arp + ARP_FIELD(arp_hardware), RTE_ARP_HRD_ETHER);
	store_be16(arp + ARP_FIELD(arp_protocol), RTE_ETHER_TYPE_IPV4);
	arp[ARP_FIELD(arp_hlen)] = RTE_ETHER_ADDR_LEN;
	arp[ARP_FIELD(arp_plen)] = 4;
	store_be16(arp + ARP_FIELD(arp_opcode), RTE_ARP_OP_REQUEST);
	memcpy(arp + ARP_ADDR(arp_sha), src_mac, RTE_ETHER_ADDR_LEN);
	memcpy(arp + ARP_ADDR(arp_sip), &src_ip, 4);
	memcpy(arp + ARP_ADDR(arp_tip), &target_ip, 4);
	return ETH_MIN_FRAME_LEN;
}

int ep_arp_sender(const uint8_t *frame, const struct ep_meta *m, uint32_t *ip, uint8_t mac[6])
{
	if (!is_ether_ipv4_arp(frame, m))
		return -1;
	const uint8_t *arp = frame + m->l3_off;
	memcpy(ip, arp + ARP_ADDR(arp_sip), 4);
	memcpy(mac, arp + ARP_ADDR(arp_sha), RTE_ETHER_ADDR_LEN);
	return 0;
}

/* Host order (compare with RTE_ARP_OP_*); 0, a reserved opcode, when the frame is not ARP. */
uint16_t ep_arp_op(const uint8_t *frame, const struct ep_meta *m)
{
	if (m->kind != EP_PKT_ARP)
		return 0;
	return load_be16(frame + m->l3_off + ARP_FIELD(arp_opcode));
}

/* Network order; 0 when the frame is not Ethernet/IPv4 ARP. */
uint32_t ep_arp_target_ip(const uint8_t *frame, const struct ep_meta *m)
{
	if (!is_ether_ipv4_arp(frame, m))
		return 0;
	uint32_t ip;
	memcpy(&ip, frame + m->l3_off + ARP_ADDR(arp_tip), 4);
	return ip;
}
