/* edgeplane data plane: the plain C API.
 *
 * The N-API addon (src/addon.cc), the C tests and the C benchmark all drive the data plane through
 * this header only. Calls are made from one control thread (the thread that called ep_eal_init);
 * worker lcores never call back. Addresses and ports are in network byte order unless noted. */
#ifndef EDGEPLANE_H
#define EDGEPLANE_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ep_errcode {
	EP_OK = 0,
	EP_EINVAL,  /* bad argument */
	EP_EEAL,    /* EAL refused to start or a DPDK object could not be created */
	EP_ENOPORT, /* unknown or unusable port */
	EP_EFULL,   /* a table is full */
	EP_ENOENT,  /* no such entry */
	EP_ESTATE,  /* wrong lifecycle state */
	EP_ENOMEM,  /* out of DPDK memory */
	EP_ERULE,   /* a rule set could not be built */
};

struct ep_error {
	int code;
	char msg[256];
};

const char *ep_errcode_name(int code);

/* ---- lifecycle ---- */

#define EP_MAX_PORTS 8
#define EP_MAX_WORKERS 16
#define EP_PORT_ROUTE 0xffff /* action output port meaning "route by destination" */

enum ep_miss_policy { EP_MISS_DROP = 0, EP_MISS_PUNT = 1, EP_MISS_ROUTE = 2 };

enum ep_timeout { EP_TO_SYN, EP_TO_ESTABLISHED, EP_TO_FIN, EP_TO_RST, EP_TO_UDP, EP_TO_OTHER, EP_TO__COUNT };

struct ep_config {
	uint32_t affinity_capacity;        /* manager-installed fixed affinities */
	uint32_t flow_capacity_per_worker; /* flows learned by each worker for virtual services */
	uint32_t mbufs_per_worker;
	uint8_t miss_policy; /* enum ep_miss_policy */
	uint32_t timeouts_s[EP_TO__COUNT];
	/* interest criteria with the hold flag (SMFA-R15): packets each worker may keep waiting for
	 * their flow's fixed affinity (0 = 1024; rounded up to a power of two), and for how long (0 = 2000 ms) */
	uint32_t hold_capacity_per_worker;
	uint32_t hold_timeout_ms;
};

/* rte_eal_init with the given argv (argv[0] is the program name). Once per process. */
int ep_eal_init(int argc, char **argv, struct ep_error *err);
/* Allocates pools, tables and rings for every worker lcore EAL was given; probes ports. */
int ep_create(const struct ep_config *cfg, struct ep_error *err);
/* Configures and starts every port (one RX/TX queue pair per worker, RSS when supported) and
 * launches the workers. */
int ep_start(struct ep_error *err);
/* Stops workers (joined) and ports. ep_start may be called again. */
int ep_stop(struct ep_error *err);
/* Stops if running, frees everything, rte_eal_cleanup. */
void ep_shutdown(void);

/* ---- ports ---- */

struct ep_port_info {
	char name[64];
	char driver[32];
	uint8_t mac[6];
	uint16_t rx_queues, tx_queues;
	uint8_t rss;
	uint8_t link_up;
	uint32_t speed_mbps;
};

uint16_t ep_port_count(void);
int ep_port_info(uint16_t port, struct ep_port_info *out, struct ep_error *err);
/* The unit's own address on the port (0 = none), for ARP/ping and as the source of its ARP
 * requests and tunnels. Allowed while running. */
int ep_port_configure(uint16_t port, uint32_t addr, uint8_t prefix_len, int promiscuous,
		      struct ep_error *err);

/* The unit's own IPv6 address on the port (all zero = none), for neighbour discovery and ICMPv6
 * echo; prefix_len > 0 adds the connected route. Allowed while running. */
int ep_port_configure6(uint16_t port, const uint8_t addr[16], uint8_t prefix_len, struct ep_error *err);

/* ---- addressing ---- */

/* Addresses answered for ARP and ICMP echo on a port (own or virtual addresses). */
int ep_local_addr_add(uint16_t port, uint32_t ip, struct ep_error *err);
int ep_local_addr_del(uint16_t port, uint32_t ip, struct ep_error *err);
/* How ARP requests for a local address are answered (cluster delivery modes, cluster.md CL-R2):
 * with the port's MAC (the default), with a MAC the cluster members share (unicast or multicast;
 * the reply's Ethernet source stays the port's own), or not at all (forwarding delivery: only the
 * master answers for the cluster's addresses). */
enum ep_arp_answer { EP_ARP_PORT_MAC = 0, EP_ARP_SHARED_MAC = 1, EP_ARP_SILENT = 2 };
int ep_local_addr_arp(uint16_t port, uint32_t ip, enum ep_arp_answer answer, const uint8_t mac[6],
		      struct ep_error *err);
/* While on, the port drops unicast frames addressed to another MAC than its own (counted
 * other_host), whatever its promiscuous mode: with forwarding or multicast-MAC delivery a member
 * must not process frames the segment floods to every member (the master's, or another member's). */
int ep_port_own_mac_only(uint16_t port, int on, struct ep_error *err);
/* gateway 0 = directly connected. */
int ep_route_add(uint32_t prefix, uint8_t len, uint16_t port, uint32_t gateway, struct ep_error *err);
int ep_route_del(uint32_t prefix, uint8_t len, struct ep_error *err);
int ep_neighbor_set(uint32_t ip, uint16_t port, const uint8_t mac[6], struct ep_error *err);
/* Sends an ARP request for ip out of the port its route names. */
int ep_resolve(uint32_t ip, struct ep_error *err);

/* IPv6 counterparts: addresses answered for neighbour solicitations and ICMPv6 echo, routes
 * (gateway all zero = directly connected), neighbours, and a neighbour solicitation for ip. */
int ep_local_addr6_add(uint16_t port, const uint8_t ip[16], struct ep_error *err);
int ep_local_addr6_del(uint16_t port, const uint8_t ip[16], struct ep_error *err);
/* ep_local_addr_arp for neighbour solicitations of a local IPv6 address: the advertisement's
 * target link-layer address is the port's MAC, the shared MAC, or none is sent. */
int ep_local_addr6_ndp(uint16_t port, const uint8_t ip[16], enum ep_arp_answer answer, const uint8_t mac[6],
		       struct ep_error *err);
int ep_route6_add(const uint8_t prefix[16], uint8_t len, uint16_t port, const uint8_t gateway[16], struct ep_error *err);
int ep_route6_del(const uint8_t prefix[16], uint8_t len, struct ep_error *err);
int ep_neighbor6_set(const uint8_t ip[16], uint16_t port, const uint8_t mac[6], struct ep_error *err);
int ep_resolve6(const uint8_t ip[16], struct ep_error *err);

/* ---- affinities ---- */

#include "../src/flow_key.h"

enum ep_action_type { EP_ACT_FORWARD = 1, EP_ACT_DROP = 2, EP_ACT_PUNT = 3, EP_ACT_SERVICE = 4 };
enum ep_dispatch {
	EP_DISPATCH_NONE = 0,
	EP_DISPATCH_MAC = 1,  /* rewrite only the destination MAC to the forward IP's neighbour */
	EP_DISPATCH_IPIP = 2, /* outer IPv4, protocol 4 */
	EP_DISPATCH_GRE = 3,  /* outer IPv4 + GRE */
	EP_DISPATCH_GUE = 4,  /* outer IPv4 + UDP (gue_port) + GUE header carrying IPv4 */
};

#define EP_ACT_F_NEXT_HOP 0x01 /* next_hop_mac is set: send out_port to that MAC, no lookup */
#define EP_ACT_F_DSCP 0x02     /* rewrite the IPv4 DSCP to qos_dscp */
#define EP_ACT_F_VLAN_PUSH 0x04 /* push an 802.1Q tag (qos_vlan_tci) */
#define EP_ACT_F_VLAN_POP 0x08  /* remove the outer 802.1Q tag if present */
#define EP_ACT_F_PCP 0x10       /* set the 802.1p priority of the (pushed or present) tag */
#define EP_ACT_F_MPLS_PUSH 0x20 /* push an MPLS label (qos_mpls_label) */
#define EP_ACT_F_MPLS_POP 0x40  /* remove the top MPLS label (the packet arrived labelled) */
#define EP_ACT_F_NAT_PREPARED 0x80 /* internal: NAT checksum deltas precomputed for the flow's key */
#define EP_ACT_F2_SEQ_ADJUST 0x0001 /* internal: the affinity carries a sequence adjustment */
#define EP_ACT_F2_INTEREST 0x0002   /* internal: the affinity carries interest criteria */
#define EP_ACT_F2_STATS_IP 0x0004   /* internal: the affinity counts under a forward IP (information flag) */
#define EP_ACT_F2_PLAIN 0x0008      /* internal: forwarding with at most a prepared NAT and a TTL decrement */
#define EP_ACT_F2_CASCADE 0x0010    /* internal: a wildcard after which a lower-precedence one decides */
#define EP_ACT_F2_NAT6 0x0020       /* internal: a manager affinity translating IPv6 addresses (the flow's nat6_*) */

/* TCP sequence-number adjustment (SMFA-R13): seq += seq_delta for seq at or after initial_seq,
 * ack += ack_delta for ack at or after initial_ack (wraparound-safe), TCP checksum fixed. Host order. */
struct ep_seq_adjust {
	uint32_t seq_delta, initial_seq;
	uint32_t ack_delta, initial_ack;
};

/* Interest criteria (SMFA-R15, R25): the bits a packet shows (enum ep_interest_bit), which of them
 * make it interesting to the manager, and per bit what happens to an interesting packet:
 *   hold: the original waits in the data plane (bounded, per worker) until the flow's fixed affinity
 *         is installed, then goes through the pipeline in arrival order; or is dropped after the hold
 *         timeout (drop reason hold_timeout). When the hold buffer is full it goes up instead.
 *   copy: the original follows the affinity's own action; the manager gets a copy.
 *   neither: the original itself goes up (and the manager returns it).
 *   data: the interest match carries the packet's bytes (always when the original goes up).
 * A packet showing none of the mask's bits follows the affinity's own action, nothing goes up. */
enum ep_interest_bit {
	EP_INTEREST_FIN = 0, EP_INTEREST_SYN = 1, EP_INTEREST_RST = 2, EP_INTEREST_PSH = 3,
	EP_INTEREST_ACK = 4, EP_INTEREST_URG = 5,
	EP_INTEREST_DATA = 6,       /* TCP/UDP payload present */
	EP_INTEREST_FIRST_DATA = 7, /* the first payload the affinity sees (wildcards: every payload, no flow yet) */
	EP_INTEREST_FRAGMENT = 8,   /* an IPv4 fragment */
	EP_INTEREST_ALL = 15,       /* every packet */
};

struct ep_interest {
	uint16_t mask, data, copy, hold; /* bit sets of enum ep_interest_bit; mask 0 = no criteria */
};

struct ep_action {
	uint8_t type;     /* enum ep_action_type */
	uint8_t dispatch; /* enum ep_dispatch */
	uint8_t flags;    /* EP_ACT_F_* */
	uint8_t nat_keep; /* internal: NAT fields the data plane filled in from the flow key (bit per field) */
	uint16_t out_port; /* EP_PORT_ROUTE: by route lookup */
	uint8_t next_hop_mac[6];
	uint32_t nat_src_ip, nat_dst_ip;     /* 0 = unchanged */
	uint16_t nat_src_port, nat_dst_port; /* 0 = unchanged */
	uint32_t forward_ip;                 /* dispatch target */
	uint32_t service_id;                 /* EP_ACT_SERVICE */
	uint16_t gue_port;                   /* EP_DISPATCH_GUE destination port, network order */
	uint8_t qos_dscp;                    /* EP_ACT_F_DSCP: 0..63 */
	uint8_t qos_pcp;                     /* EP_ACT_F_PCP: 0..7 */
	uint16_t qos_vlan_tci;               /* EP_ACT_F_VLAN_PUSH, host order (VID + PCP bits) */
	uint16_t flags2;                     /* EP_ACT_F2_*: set by the data plane */
	uint32_t qos_mpls_label;             /* EP_ACT_F_MPLS_PUSH: 20-bit label, host order */
	/* set by the data plane for exact-match flows (EP_ACT_F_NAT_PREPARED); callers leave them 0 */
	uint16_t nat_ip_delta, nat_l4_delta;
};

/* Connection state as one direction's packets show it (EP_TCP_* in packet.h are the flag bits). */
enum ep_tcp_state { EP_TCPS_NONE = 0, EP_TCPS_SYN, EP_TCPS_ESTABLISHED, EP_TCPS_FIN, EP_TCPS_RST };
enum ep_origin { EP_ORIGIN_MANAGER = 0, EP_ORIGIN_LEARNED = 1 };

struct ep_affinity_info {
	struct ep_flow_key key;
	struct ep_action action;
	uint32_t ttl_s; /* seconds left */
	struct ep_seq_adjust seq; /* all zero when the affinity has none */
	struct ep_interest interest; /* all zero when the affinity has none */
	uint32_t stats_ip;           /* the forward IP it counts under (information flag), 0 = none */
	uint8_t nat6_src[16], nat6_dst[16]; /* an IPv6 affinity's new addresses, all zero = unchanged */
	uint64_t packets, bytes;
	uint8_t origin;    /* enum ep_origin */
	uint8_t tcp_state; /* enum ep_tcp_state */
};

/* Manager-installed fixed affinity; ttl_s > 0 adds or refreshes (expires ttl_s after this call). */
int ep_affinity_add(const struct ep_flow_key *key, const struct ep_action *act, uint32_t ttl_s,
		    struct ep_error *err);
/* The same with a sequence adjustment (TCP only; NULL = none). */
int ep_affinity_add_seq(const struct ep_flow_key *key, const struct ep_action *act, uint32_t ttl_s,
			const struct ep_seq_adjust *seq, struct ep_error *err);
/* What a fixed affinity may carry besides its action. */
struct ep_affinity_options {
	const struct ep_seq_adjust *seq;    /* TCP only; NULL = none */
	const struct ep_interest *interest; /* NULL or mask 0 = none (e.g. FIN/RST notification, SMFA-R25) */
	uint32_t stats_ip; /* information flag (SMFA-R11): count packets and bytes under this forward IP; 0 = no */
	/* NAT of an IPv6 key's addresses (the action's nat_*_ip are IPv4 and must stay 0 for one);
	 * NULL or all zero = unchanged. The action's nat_*_port apply as for IPv4. */
	const uint8_t *nat6_src, *nat6_dst;
};
/* The general form of the two above; opts NULL = none. */
int ep_affinity_add_opts(const struct ep_flow_key *key, const struct ep_action *act, uint32_t ttl_s,
			 const struct ep_affinity_options *opts, struct ep_error *err);
/* Returns 1 when removed, 0 when absent. */
int ep_affinity_del(const struct ep_flow_key *key);
/* Copies up to max affinities into out (manager ones first, then learned flows when asked);
 * counters summed over workers. A snapshot taken while workers run: an entry created or deleted
 * during the walk may be missed. Returns the number written. */
uint32_t ep_affinity_list(struct ep_affinity_info *out, uint32_t max, int include_learned);
uint32_t ep_affinity_count(void);
uint32_t ep_learned_count(void);

struct ep_wildcard {
	uint8_t proto; /* 0 = any */
	uint8_t family; /* 0 or 4: IPv4 fields; 6: the *6 fields (the rule matches IPv6 packets only) */
	uint32_t src_ip, src_mask, dst_ip, dst_mask; /* masks may be non-contiguous */
	uint16_t src_port, dst_port;                 /* 0 = any */
	uint32_t precedence;                         /* higher wins */
	uint32_t id;                                 /* the caller's name for it, reported in its punts */
	struct ep_action action;                     /* what matching packets get (interesting ones: see ep_interest) */
	struct ep_interest interest;                 /* mask 0 = none */
	/* cascading (SMFA-R18, IPv4): after this rule's interest criteria, every lower-precedence
	 * cascading rule that matches applies its own, down to the best lower-precedence wildcard
	 * without cascade that matches, which decides the packet; none: the last cascading rule's
	 * action. Its criteria cannot hold (no fixed affinity of its service ends the wait). */
	uint8_t cascade;
	uint8_t src_ip6[16], src_mask6[16], dst_ip6[16], dst_mask6[16];
};

/* Builds a new wildcard set off the fast path and swaps it in; the old one is freed once no
 * worker can still be using it. n == 0 clears the set. */
int ep_wildcards_commit(const struct ep_wildcard *rules, uint32_t n, struct ep_error *err);

/* ---- virtual services ---- */

#define EP_MAX_SERVICES 256
#define EP_MAX_SERVERS 1024

struct ep_server {
	uint32_t ip;
	uint16_t port;
	uint16_t weight; /* 0 = takes no new flows (drain) */
	uint8_t ip6[16]; /* the address of a server of an IPv6 service (ip is then 0) */
};

/* How a new connection reaches the chosen server. */
enum ep_service_mode {
	EP_MODE_NAT = 0,     /* DNAT; servers route replies back through the unit, which SNATs them */
	EP_MODE_FULLNAT = 1, /* DNAT + SNAT to snat_ip with a port from this unit's pool */
	EP_MODE_DSR = 2,     /* MAC rewrite to the server (same L2); the server answers from the VIP */
	EP_MODE_IPIP = 3,    /* tunnels: the server decapsulates and answers from the VIP directly */
	EP_MODE_GRE = 4,
	EP_MODE_GUE = 5,
};

enum ep_algorithm {
	EP_ALG_MAGLEV = 0, /* consistent hash of the 5-tuple */
	EP_ALG_WRR = 1,    /* smooth weighted round robin; least-load feeds it load-derived weights */
};

/* QoS marks (SR-R5) a service puts on what it forwards: the EP_ACT_F_DSCP, _PCP, _VLAN_PUSH,
 * _VLAN_POP, _MPLS_PUSH and _MPLS_POP flags with their values, as in struct ep_action. Applied at TX
 * after translation (tunnel modes: DSCP on the inner and the outer header). */
#define EP_QOS_FLAGS (EP_ACT_F_DSCP | EP_ACT_F_PCP | EP_ACT_F_VLAN_PUSH | EP_ACT_F_VLAN_POP | EP_ACT_F_MPLS_PUSH | EP_ACT_F_MPLS_POP)
struct ep_qos {
	uint8_t flags;       /* EP_QOS_FLAGS bits only; 0 = no marks */
	uint8_t dscp;        /* 0..63 (IPv4 TOS / IPv6 traffic class, ECN kept) */
	uint8_t pcp;         /* 0..7: priority of the pushed (or present) 802.1Q tag, or the pushed MPLS TC */
	uint16_t vlan_tci;   /* host order (VID + PCP bits) */
	uint32_t mpls_label; /* 20 bits, host order */
};

struct ep_service_conf {
	uint32_t id; /* < EP_MAX_SERVICES */
	uint32_t vip;
	uint16_t port;       /* 0 = all ports (the client's destination port is kept) */
	uint8_t proto;
	uint8_t mode;        /* enum ep_service_mode */
	uint8_t algorithm;   /* enum ep_algorithm */
	uint32_t table_size; /* Maglev table size, prime */
	uint32_t snat_ip;    /* FULLNAT source address (one of the unit's) */
	uint16_t snat_port_min, snat_port_max; /* FULLNAT source ports, host order, inclusive */
	uint16_t gue_port;   /* GUE destination port, host order (default 6080) */
	uint8_t family;      /* 0 or 4: vip, snat_ip and the servers' ip; 6: vip6, snat_ip6, ip6 */
	uint8_t vip6[16];
	uint8_t snat_ip6[16];
	struct ep_qos qos_to_server; /* packets of the service's connections towards the servers */
	struct ep_qos qos_to_client; /* replies towards clients (nat and fullnat: they pass the unit) */
};

int ep_service_set(const struct ep_service_conf *svc, const struct ep_server *servers, uint32_t n,
		   struct ep_error *err);
int ep_service_del(uint32_t id, struct ep_error *err);
/* Forgets every connection pinned to a server of a service: their next packet is dropped (a new
 * TCP SYN picks a server again) and both directions are deleted. For "reset on failure". */
int ep_service_flush_server(uint32_t id, uint32_t ip, uint16_t port, struct ep_error *err);
/* The same for a server of an IPv6 service. */
int ep_service_flush_server6(uint32_t id, const uint8_t ip6[16], uint16_t port, struct ep_error *err);
/* Forgets one learned connection (both directions) by either direction's key. Asynchronous:
 * workers apply it within a loop. Returns 0, or -1 when a worker's command queue is full. */
int ep_flow_forget(const struct ep_flow_key *key, struct ep_error *err);

/* ---- cluster: work units and flow-state replication (cluster.md CL-R3, R4, R9) ---- */

#define EP_WORK_UNITS 1024

enum ep_unit_state {
	EP_UNIT_OWNED = 0,   /* this unit processes the work unit's packets (the default: standalone) */
	EP_UNIT_FOREIGN = 1, /* another member does: drop silently, never answer */
	EP_UNIT_HOLD = 2,    /* not yet assigned/acknowledged: punt (reason EP_PUNT_HELD) for the control
			      * application to hold and release in order */
	EP_UNIT_FORWARD = 3, /* another member does, and this one is the master of forwarding delivery:
			      * the frame goes on to the owner's data-port MAC, otherwise unchanged */
};

#define EP_MAX_UNIT_PEERS 32

/* Forwarding delivery (cluster.md CL-R2): where the master sends frames of EP_UNIT_FORWARD units,
 * out of the port they came in by (the members share the segments). */
struct ep_unit_forwarding {
	uint8_t peer[EP_WORK_UNITS];                     /* EP_UNIT_FORWARD units: the owner, an index into mac */
	uint8_t mac[EP_MAX_UNIT_PEERS][EP_MAX_PORTS][6]; /* each owner's data-port MAC by port id */
};

/* The work unit of a connection: a hash of its client's address and port (both directions of a
 * translated flow carry their forward direction's unit). Identical on every member. */
uint16_t ep_work_unit(uint32_t client_ip, uint16_t client_port);
uint16_t ep_work_unit6(const uint8_t client_ip6[16], uint16_t client_port);
/* Publishes a new ownership table of EP_WORK_UNITS enum ep_unit_state bytes (RCU swap);
 * forwarding says where EP_UNIT_FORWARD units go (NULL when none is). */
int ep_work_units_set(const uint8_t *states, const struct ep_unit_forwarding *forwarding, struct ep_error *err);

/* REFRESHED: an owned connection's record again, unchanged but for its time left, before the peers'
 * copies would expire while this unit keeps it (cluster.md "Flow refresh"). */
enum ep_flow_event_kind { EP_FLOW_CREATED = 1, EP_FLOW_UPDATED = 2, EP_FLOW_DELETED = 3, EP_FLOW_REFRESHED = 4 };

/* One direction of a learned connection as replicated between members: enough to go on forwarding
 * it identically (tuple, translation, server, TCP state, time left). */
struct ep_flow_record {
	struct ep_flow_key key;
	struct ep_action action; /* as installed (no internal fields) */
	uint32_t ttl_ms;         /* idle time left */
	uint16_t service_id;
	uint16_t server_slot;
	uint16_t unit;
	uint8_t kind;      /* enum ep_flow_event_kind (ignored by import) */
	uint8_t tcp_state; /* enum ep_tcp_state */
	uint8_t reverse;
	uint8_t has_server;
	uint8_t pad[2];
	/* IPv6 flows: the translated addresses (the action has room for IPv4 ones only); zero otherwise */
	uint8_t nat6_src[16], nat6_dst[16];
};

/* Load per work unit for rebalancing (CL-R8): packets since start and connections now. */
struct ep_unit_load {
	uint64_t packets;
	uint64_t flows;
};
/* Fills out[EP_WORK_UNITS], summed over workers. */
void ep_unit_loads(struct ep_unit_load *out);

/* Flow events are produced only while replication is on (off by default: no cost). While on, the
 * workers' expiry sweep also re-sends (EP_FLOW_REFRESHED) a live connection of an owned unit whose
 * peers' copies have less than a third of its timeout left while it lasts longer here. */
void ep_replication_enable(int on);
/* Fetches up to max flow events produced by the workers since the last call. */
uint32_t ep_flow_events(struct ep_flow_record *out, uint32_t max);
/* Events lost because the control application did not fetch them fast enough. */
uint64_t ep_flow_events_lost(void);
/* Installs replicated flows (a peer's connections this unit may have to take over); applied by the
 * workers within a loop. Returns the number queued (fewer when the queues are full). */
uint32_t ep_flow_import(const struct ep_flow_record *records, uint32_t n);

/* ---- counters ---- */

#include "../src/drop_reason.h"

enum ep_action_counter { EP_AC_FORWARD, EP_AC_DROP, EP_AC_PUNT, EP_AC_SERVICE, EP_AC_LOCAL, EP_AC__COUNT };

struct ep_lcore_counters {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes;
	uint64_t busy_polls, idle_polls;
	uint64_t port_rx_pkts[EP_MAX_PORTS], port_rx_bytes[EP_MAX_PORTS];
	uint64_t port_tx_pkts[EP_MAX_PORTS], port_tx_bytes[EP_MAX_PORTS];
	uint64_t actions[EP_AC__COUNT];
	uint64_t drops[EP_DROP__COUNT];
	uint64_t manager_hits, learned_hits, wildcard_hits, misses;
	uint64_t flows_created, flows_expired;
	uint64_t punted;
	/* interest criteria: matches sent up, of which copies (the original went on); packets held,
	 * released when their affinity came, sent up because the hold buffer was full; copies lost for
	 * want of an mbuf or room in the punt queue. Timed-out held packets are drops (hold_timeout). */
	uint64_t interest_matches, interest_copies;
	uint64_t held, hold_released, hold_overflows, interest_lost;
	/* forwarding delivery: frames of other members' work units this master passed on to them */
	uint64_t unit_forwarded;
};

struct ep_port_counters {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, rx_missed, rx_errors, tx_errors;
};

struct ep_server_counters {
	uint32_t service_id;
	uint32_t ip;
	uint16_t port;
	uint16_t weight;
	uint8_t ip6[16]; /* servers of IPv6 services */
	uint64_t flows, packets, bytes; /* packets and bytes of both directions */
	/* connection setup time seen by the data plane (client SYN to server SYN-ACK), NAT modes */
	uint64_t handshakes, handshake_us_total;
};

uint32_t ep_worker_count(void);
/* lcore id of worker i */
uint32_t ep_worker_lcore(uint32_t i);
/* Counters of worker i as last written by it (not summed). */
void ep_worker_counters(uint32_t i, struct ep_lcore_counters *out);
/* Sum over workers plus the control thread's own counters (injects, expiries). */
void ep_counters_total(struct ep_lcore_counters *out);
int ep_port_counters(uint16_t port, struct ep_port_counters *out);
/* Per-server counters of every configured service; returns the count written. */
uint32_t ep_server_counters(struct ep_server_counters *out, uint32_t max);
uint64_t ep_injected_count(void);

/* Per-forward-IP counters of affinities installed with the information flag (SMFA-R11), summed
 * over workers; they outlive the affinities. Returns the number written. */
#define EP_MAX_STATS_IPS 4096
struct ep_forward_ip_counters {
	uint32_t ip;
	uint64_t packets, bytes;
};
uint32_t ep_forward_ip_counters(struct ep_forward_ip_counters *out, uint32_t max);

/* ---- punt / inject ---- */

enum ep_punt_reason { EP_PUNT_ACTION = 0, EP_PUNT_MISS = 1, EP_PUNT_HELD = 2, EP_PUNT_INTEREST = 3 };

#define EP_INTEREST_F_PACKET 0x01 /* the manager wants the packet's bytes (data flag, or the original itself) */
#define EP_INTEREST_F_COPY 0x02   /* a copy: the original went on through the affinity's action */
#define EP_INTEREST_F_HELD 0x04   /* the original waits in the data plane for the flow's fixed affinity */
#define EP_INTEREST_F_FIXED 0x08  /* a fixed affinity's criteria matched (else a wildcard's) */

struct ep_punted {
	uint16_t port;
	uint8_t reason; /* enum ep_punt_reason */
	uint8_t interest_flags; /* EP_PUNT_INTEREST: EP_INTEREST_F_* */
	uint16_t unit;  /* EP_PUNT_HELD: the work unit it waits for */
	uint16_t interest_reasons; /* EP_PUNT_INTEREST: the criteria's bits the packet showed */
	uint32_t wildcard_id; /* punted by a wildcard (action or criteria): its ep_wildcard.id, else 0 */
	uint32_t len;
	uint8_t *data; /* caller's buffer of cap bytes; len may exceed cap (truncated copy) */
	uint32_t cap;
};

/* Control-thread housekeeping (neighbour learning, ARP requests the workers asked for, expiry of
 * manager affinities) plus fetching up to max punted packets into out. Returns packets fetched. */
uint32_t ep_poll(struct ep_punted *out, uint32_t max);
/* Sends a frame out of a port as it is (worker 0 transmits it). */
int ep_inject(uint16_t port, const uint8_t *frame, uint32_t len, struct ep_error *err);
/* Runs a frame through the pipeline as if it had arrived on port (e.g. a packet a manager returned
 * with a new affinity). A punt decision for it drops it instead (punt_loop): it has already been up. */
int ep_inject_process(uint16_t port, const uint8_t *frame, uint32_t len, struct ep_error *err);
/* The same for an IPv4 packet the manager of a cascading wildcard (wildcard_id) returned: it goes on
 * after that rule (SMFA-R18) - fixed affinities first, then the cascading rules below it and the rule
 * that decides, which may still send it up to their own managers. Without that rule in the current
 * set it is processed as by ep_inject_process. */
int ep_inject_process_after(uint16_t port, const uint8_t *frame, uint32_t len, uint32_t wildcard_id,
			    struct ep_error *err);

#ifdef __cplusplus
}
#endif

#endif
