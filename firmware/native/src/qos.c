/* Layer-2 QoS rewrites. Every insert or removal moves the bytes in front of the change (the
 * Ethernet addresses, and the tag when present) so the IP datagram never moves. */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>

#include "qos.h"

#define TAG_LEN 4
#define MAC_PAIR_LEN 12

static inline uint16_t load_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Offset of the ethertype of the outermost Ethernet header (after an 802.1Q tag if present). */
static uint32_t ethertype_offset(const uint8_t *frame)
{
	return load_be16(frame + MAC_PAIR_LEN) == RTE_ETHER_TYPE_VLAN ? MAC_PAIR_LEN + TAG_LEN : MAC_PAIR_LEN;
}

static void vlan_pop(struct rte_mbuf *m)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	if (load_be16(frame + MAC_PAIR_LEN) != RTE_ETHER_TYPE_VLAN)
		return;
	memmove(frame + TAG_LEN, frame, MAC_PAIR_LEN);
	rte_pktmbuf_adj(m, TAG_LEN);
}

static int vlan_push(struct rte_mbuf *m, uint16_t tci)
{
	uint8_t *frame = (uint8_t *)rte_pktmbuf_prepend(m, TAG_LEN);
	if (!frame)
		return -1;
	memmove(frame, frame + TAG_LEN, MAC_PAIR_LEN);
	store_be16(frame + MAC_PAIR_LEN, RTE_ETHER_TYPE_VLAN);
	store_be16(frame + MAC_PAIR_LEN + 2, tci);
	return 0;
}

static int set_pcp(struct rte_mbuf *m, uint8_t pcp)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	if (load_be16(frame + MAC_PAIR_LEN) != RTE_ETHER_TYPE_VLAN)
		return -1;
	uint16_t tci = load_be16(frame + MAC_PAIR_LEN + 2);
	store_be16(frame + MAC_PAIR_LEN + 2, (uint16_t)((tci & 0x1fff) | (pcp << 13)));
	return 0;
}

/* Removes the top label; when it was the bottom of the stack the ethertype becomes IP again. */
static int mpls_pop(struct rte_mbuf *m)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t et = ethertype_offset(frame);
	if (load_be16(frame + et) != RTE_ETHER_TYPE_MPLS || m->data_len < et + 2 + TAG_LEN + 1)
		return -1;
	const uint8_t *label = frame + et + 2;
	if (label[2] & 0x01) {
		uint8_t version = label[TAG_LEN] >> 4;
		store_be16(frame + et, version == 6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
	}
	memmove(frame + TAG_LEN, frame, et + 2);
	rte_pktmbuf_adj(m, TAG_LEN);
	return 0;
}

static int mpls_push(struct rte_mbuf *m, uint32_t label_value, uint8_t tc)
{
	uint8_t *old = rte_pktmbuf_mtod(m, uint8_t *);
	uint32_t et = ethertype_offset(old);
	uint16_t inner_type = load_be16(old + et);
	uint8_t ttl = 64;
	int bottom = inner_type != RTE_ETHER_TYPE_MPLS;
	if (inner_type == RTE_ETHER_TYPE_IPV4 && m->data_len > et + 2 + 8)
		ttl = old[et + 2 + 8];
	uint8_t *frame = (uint8_t *)rte_pktmbuf_prepend(m, TAG_LEN);
	if (!frame)
		return -1;
	memmove(frame, frame + TAG_LEN, et + 2);
	store_be16(frame + et, RTE_ETHER_TYPE_MPLS);
	uint32_t entry = (label_value & 0xfffff) << 12 | (uint32_t)(tc & 7) << 9 | (uint32_t)bottom << 8 | ttl;
	entry = rte_cpu_to_be_32(entry);
	memcpy(frame + et + 2, &entry, sizeof(entry));
	return 0;
}

enum ep_drop_reason ep_apply_l2_qos(struct rte_mbuf *m, const struct ep_action *a)
{
	if (a->flags & EP_ACT_F_VLAN_POP)
		vlan_pop(m);
	if ((a->flags & EP_ACT_F_MPLS_POP) && mpls_pop(m) != 0)
		return EP_DROP_QOS_UNSUPPORTED;
	if ((a->flags & EP_ACT_F_MPLS_PUSH) &&
	    mpls_push(m, a->qos_mpls_label, (a->flags & EP_ACT_F_PCP) ? a->qos_pcp : 0) != 0)
		return EP_DROP_NO_HEADROOM;
	if ((a->flags & EP_ACT_F_VLAN_PUSH) && vlan_push(m, a->qos_vlan_tci) != 0)
		return EP_DROP_NO_HEADROOM;
	if ((a->flags & EP_ACT_F_PCP) && set_pcp(m, a->qos_pcp) != 0 && !(a->flags & EP_ACT_F_MPLS_PUSH))
		return EP_DROP_QOS_UNSUPPORTED;
	return EP_DROP_NONE;
}
