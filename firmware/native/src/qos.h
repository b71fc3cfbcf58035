/* Layer-2 QoS actions on a packet about to leave (SR-R5): 802.1Q tag pop/push, 802.1p
 * priority, MPLS label push/pop. */
#ifndef EP_QOS_H
#define EP_QOS_H

#include <rte_mbuf.h>

#include "drop_reason.h"
#include "edgeplane.h"

/* Applies the action's VLAN/PCP/MPLS flags in the order pop VLAN, pop MPLS, push MPLS, push VLAN,
 * set PCP. Returns EP_DROP_NONE or why the packet cannot take the action. */
enum ep_drop_reason ep_apply_l2_qos(struct rte_mbuf *m, const struct ep_action *a);

#endif
