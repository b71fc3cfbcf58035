/* Why the data plane dropped a packet. One counter per reason per lcore; names are what
 * the control application exports as metric labels. */
#ifndef EP_DROP_REASON_H
#define EP_DROP_REASON_H

#define EP_DROP_REASONS(X)                                                                   \
	X(NONE, "none")                                                                      \
	X(TRUNCATED_L2, "truncated_l2")         /* shorter than an Ethernet (+VLAN) header */ \
	X(BAD_L2_HEADER, "bad_l2_header")       /* MPLS stack deeper than 8 labels */          \
	X(TRUNCATED_L3, "truncated_l3")         /* shorter than the IP/ARP header */          \
	X(BAD_IP_VERSION, "bad_ip_version")                                                  \
	X(BAD_IP_HEADER_LEN, "bad_ip_header_len") /* IHL < 5 or beyond the datagram */        \
	X(BAD_IP_TOTAL_LEN, "bad_ip_total_len") /* length field beyond the bytes received */  \
	X(TRUNCATED_L4, "truncated_l4")                                                      \
	X(BAD_L4_HEADER, "bad_l4_header")       /* TCP data offset / UDP length invalid */    \
	X(IP_OPTIONS, "ip_options")             /* IPv4 options are not forwarded */          \
	X(FRAGMENT, "fragment")                 /* a later fragment whose first one was not seen */ \
	X(TTL_EXCEEDED, "ttl_exceeded")                                                      \
	X(UNSUPPORTED_L2, "unsupported_l2")     /* ethertype neither IPv4, IPv6 nor ARP */    \
	X(NO_MATCH, "no_match")                 /* no affinity and the miss policy is drop */ \
	X(ACTION_DROP, "action_drop")           /* an affinity said drop */                   \
	X(NO_ROUTE, "no_route")                                                              \
	X(NO_NEIGHBOR, "no_neighbor")           /* next hop MAC unknown (ARP sent) */         \
	X(NO_SERVER, "no_server")               /* service without usable servers */          \
	X(FLOW_TABLE_FULL, "flow_table_full")                                                \
	X(NAT_UNSUPPORTED, "nat_unsupported")   /* NAT asked on a packet it cannot rewrite */ \
	X(NO_HEADROOM, "no_headroom")           /* encapsulation needs more headroom */       \
	X(PUNT_QUEUE_FULL, "punt_queue_full")                                                \
	X(TX_FULL, "tx_full")                                                                \
	X(ARP_IGNORED, "arp_ignored")           /* ARP not for us (after learning) */        \
	X(LOCAL_UNHANDLED, "local_unhandled")   /* to our own address, not ARP/echo */       \
	X(BAD_PORT, "bad_port")                 /* action names a port that is not running */ \
	X(SNAT_EXHAUSTED, "snat_exhausted")     /* full NAT: no free source port in the pool */ \
	X(QOS_UNSUPPORTED, "qos_unsupported")   /* QoS action impossible on this packet */ \
	X(SERVER_FLUSHED, "server_flushed")     /* its server's connections were forgotten */ \
	X(PUNT_LOOP, "punt_loop")               /* a frame the control application injected for processing would go back up */ \
	X(FOREIGN_UNIT, "foreign_unit")         /* its work unit belongs to another cluster member */ \
	X(NDP_IGNORED, "ndp_ignored")           /* neighbour discovery not for us, or invalid (after learning) */ \
	X(HOLD_TIMEOUT, "hold_timeout")         /* held for a fixed affinity that did not come in time */ \
	X(NO_TUNNEL_SOURCE, "no_tunnel_source") /* an IPv6 tunnel out a port without an IPv6 address */ \
	X(TUNNEL_TOO_BIG, "tunnel_too_big")     /* the outer header would take the length past 65535 */ \
	X(OTHER_HOST, "other_host")             /* unicast to another MAC on a port that takes its own only */

enum ep_drop_reason {
#define EP_DROP_ENUM(name, str) EP_DROP_##name,
	EP_DROP_REASONS(EP_DROP_ENUM)
#undef EP_DROP_ENUM
	EP_DROP__COUNT
};

extern const char *const ep_drop_reason_names[EP_DROP__COUNT];

#endif
