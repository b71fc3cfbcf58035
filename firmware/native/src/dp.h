/* Internal state shared by the control-thread code and the workers.
 *
 * Writers: the control thread owns the manager affinity table, the wildcard set, services, routes,
 * neighbours and local addresses; each worker owns its learned-flow table and its counters.
 * Readers never lock: rte_hash in lock-free read mode, pointers swapped with release stores and old
 * objects freed after an RCU (QSBR) grace period that every worker reports once per loop. */
#ifndef EP_DP_H
#define EP_DP_H

#include <stdint.h>
#include <rte_common.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lpm.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "affinity_table.h"
#include "edgeplane.h"
#include "flow_key.h"
#include "hold.h"

#define EP_BURST 32
#define EP_HASH_SEED 0x5eed1e55
#define EP_MAX_LOCAL_ADDRS 64
#define EP_MAX_ROUTES 1024
#define EP_MAX_NEIGHBORS 4096
#define EP_EVENT_RING_SIZE 4096
#define EP_PUNT_RING_SIZE 4096
/* hash.fdir.lo of an injected frame that resumes a cascade after the wildcard in hash.fdir.hi */
#define EP_INJECT_RESUME 0x52534d31u

/* A fixed affinity's per-flow state; the slot index is the rte_hash key position. */
struct ep_flow {
	/* first cache line: all a manager-affinity hit reads */
	struct ep_action act;
	uint8_t in_use; /* written last: readers treat a slot with in_use == 0 as absent */
	uint8_t tcp_state;
	uint8_t has_server; /* counts towards service_id/server_slot */
	uint8_t reverse;    /* the server->client half of a learned NAT flow */
	uint32_t neigh_gen; /* resolved next hop valid while equal to dp.neigh_gen */
	uint16_t tx_port;
	uint8_t dst_mac[6];
	/* second line: what a learned-flow hit also writes */
	uint64_t expire_tsc;
	union {
		struct {
			uint64_t packets, bytes; /* learned flows: manager counters are per worker */
		};
		struct ep_seq_adjust seq; /* manager affinities: act.flags2 & EP_ACT_F2_SEQ_ADJUST */
	};
	uint64_t syn_tsc; /* reverse NAT flows: when the client's first packet was seen */
	/* IPv6 flows: new source address, all zero = kept (learned service flows, and manager
	 * affinities with EP_ACT_F2_NAT6) */
	uint8_t nat6_src[16];
	uint16_t service_id;
	uint16_t server_slot;
	uint16_t server_epoch; /* the server's epoch when the flow was pinned (see ep_dp.server_epochs) */
	uint16_t unit;         /* work unit: of the client, for both directions */
	uint32_t ttl_s; /* manager: the ttl it was installed with */
	struct ep_flow_key key;
	/* IPv6 flows: new destination address (NAT modes) or the server (learned DSR); all zero = kept.
	 * IPv6 addresses do not fit the action, so they live here, in space the IPv4 layout pads. */
	uint8_t nat6_dst[16];
	/* replication: when the peers' copies expire, as of the last record sent (see refresh_replica) */
	uint64_t replicated_expire_tsc;
} __rte_cache_aligned;

_Static_assert(offsetof(struct ep_flow, expire_tsc) <= RTE_CACHE_LINE_SIZE,
	       "a manager hit must stay within the flow's first cache line");
_Static_assert(sizeof(struct ep_flow) == 3 * RTE_CACHE_LINE_SIZE, "IPv6 translations must not grow a flow");

struct ep_flow_table {
	struct rte_hash *hash;
	struct ep_flow *flows;
	uint32_t capacity;
	/* entries in use; rte_hash_count also counts deleted keys still waiting for RCU */
	uint32_t live;
};

struct ep_counter_pair {
	uint64_t packets, bytes;
};

static inline struct ep_flow *ep_affinity_flow(const struct ep_affinity_table *t, uint32_t pos)
{
	return (struct ep_flow *)(t->slots + (size_t)pos * t->slot_size);
}

/* A manager affinity's counters, one pair per worker, follow its flow in the slot: in arrays of
 * their own they cost a hit one more page (a TLB entry) on 4 KiB pages. */
static inline struct ep_counter_pair *ep_affinity_flow_counters(const struct ep_flow *f)
{
	return (struct ep_counter_pair *)(uintptr_t)(f + 1);
}

static inline struct ep_counter_pair *ep_affinity_counters(const struct ep_affinity_table *t, uint32_t pos)
{
	return ep_affinity_flow_counters(ep_affinity_flow(t, pos));
}

struct ep_server_slot {
	struct ep_server srv;
	uint8_t present;
};

/* An immutable snapshot of one virtual service; replaced whole on every change. */
struct ep_service_rt {
	struct ep_service_conf conf;
	uint32_t nslots;               /* slots used in servers[] (some may be absent) */
	struct ep_server_slot servers[EP_MAX_SERVERS];
	uint32_t table_size; /* entries allocated */
	uint32_t pick_size;  /* entries in use: the Maglev prime, or the WRR sequence length */
	uint16_t *table;     /* slot index per entry, UINT16_MAX if no server */
};

/* What a wildcard carries besides its action, read only when the action says so (flags2). */
struct ep_wildcard_extra {
	uint32_t id;
	uint32_t precedence;
	uint32_t cascade_pos; /* a cascading rule's position in the set's cascade list */
	struct ep_interest interest;
};

/* A cascading IPv4 rule with its match fields (network order, addresses masked): a packet that
 * cascades walks these linearly, best precedence first - few rules cascade. */
struct ep_cascade_rule {
	uint32_t rule; /* index into actions and extra */
	uint32_t precedence;
	uint32_t src, src_mask, dst, dst_mask;
	uint16_t sport, dport; /* 0 = any */
	uint8_t proto;         /* 0 = any */
};

/* An immutable wildcard set: the ACL context plus the actions its userdata indexes. */
struct ep_wildcard_set {
	struct rte_acl_ctx *acl;
	struct rte_acl_ctx *acl6; /* the IPv6 rules (wildcard6.c); userdata indexes the same actions */
	struct rte_acl_ctx *acl_final; /* the IPv4 rules without cascade, when some rule cascades */
	uint32_t n;
	uint32_t ncascade;
	struct ep_cascade_rule *cascade; /* [ncascade] best precedence first, after extra */
	struct ep_wildcard_extra *extra; /* [n], after the actions */
	struct ep_action actions[];
};

/* What a manager affinity carries besides its action, by table position (flags2 says which). */
struct ep_manager_extra {
	struct ep_interest interest;
	uint16_t stats_slot; /* index into the per-forward-IP counters */
	uint8_t data_seen;   /* a payload went through (interest bit "first data") */
};

struct ep_route_nh {
	uint16_t port;
	uint32_t gateway; /* 0: directly connected */
};

struct ep_neighbor {
	uint8_t mac[6];
	uint16_t port;
};

struct ep_local_addr {
	uint32_t ip; /* 0: empty slot */
	uint16_t port;
	uint8_t arp_answer; /* enum ep_arp_answer, stored after arp_mac (release) */
	uint8_t arp_mac[6]; /* EP_ARP_SHARED_MAC: set once per address in practice, never torn in use */
};

struct ep_port_rt {
	uint8_t used;
	uint8_t started;
	struct rte_ether_addr mac;
	uint32_t addr;
	uint8_t prefix_len;
	uint8_t prefix6_len;
	uint8_t addr6[16]; /* all zero: none */
	uint8_t own_mac_only; /* drop unicast frames to other MACs (ep_port_own_mac_only) */
};

/* The work-unit table the workers read, swapped whole (RCU). */
struct ep_unit_table {
	uint8_t state[EP_WORK_UNITS];
	uint8_t forwarding; /* some unit is EP_UNIT_FORWARD: this member is the master of forwarding delivery */
	struct ep_unit_forwarding fwd;
};

#define EP_MAX_ROUTES6 256

struct ep_route6_nh {
	uint16_t port;
	uint8_t gateway[16]; /* all zero: directly connected */
};

struct ep_local_addr6 {
	uint8_t ip[16];
	uint16_t port;
	uint8_t used; /* written last (release) */
	uint8_t ndp_answer; /* enum ep_arp_answer for neighbour solicitations, stored after ndp_mac (release) */
	uint8_t ndp_mac[6]; /* EP_ARP_SHARED_MAC: as ep_local_addr.arp_mac */
};

enum ep_event_type { EP_EV_NEIGH_LEARN = 1, EP_EV_NEIGH_MISS = 2, EP_EV_NEIGH6_LEARN = 3, EP_EV_NEIGH6_MISS = 4 };

/* Work the control thread hands to a worker for the tables only that worker may write. */
enum ep_command_op { EP_CMD_FORGET_FLOW = 1, EP_CMD_IMPORT_FLOW = 2 };

struct ep_command {
	uint32_t op;
	uint32_t pad;
	struct ep_flow_record record; /* FORGET uses record.key */
};

struct ep_event {
	uint8_t type;
	uint8_t pad;
	uint16_t port;
	uint32_t ip;
	uint8_t mac[6];
	uint8_t pad2[2];
	uint8_t ip6[16]; /* EP_EV_NEIGH6_* */
};

/* Fragments after the first carry no ports: the first fragment leaves its 5-tuple here under
 * (source, destination, IP id, protocol), so its followers find their flow. Direct-mapped: a
 * collision evicts the older datagram, whose later fragments are then dropped. */
#define EP_FRAG_SLOTS 4096
#define EP_FRAG_LIFETIME_MS 2000

struct ep_frag_slot {
	uint32_t id; /* IPv4: the 16-bit IP id; IPv6: the fragment header's Identification */
	uint8_t proto;
	uint8_t used;
	uint64_t expire_tsc;
	struct ep_flow_key key;
};

struct ep_worker {
	uint32_t index;
	uint32_t lcore;
	struct rte_mempool *pool;
	struct ep_flow_table learned;
	struct ep_counter_pair *server_counters;  /* [EP_MAX_SERVICES * EP_MAX_SERVERS] */
	uint64_t *server_flows;                   /* [EP_MAX_SERVICES * EP_MAX_SERVERS] */
	struct ep_counter_pair *server_handshakes; /* count, microseconds total */
	struct rte_ring *commands; /* control -> this worker: struct ep_command */
	struct ep_frag_slot frags[EP_FRAG_SLOTS];
	uint64_t unit_packets[EP_WORK_UNITS];
	int64_t unit_flows[EP_WORK_UNITS]; /* this worker's creations minus deletions (a peer may delete) */
	uint32_t wrr_cursor[EP_MAX_SERVICES];
	uint32_t snat_cursor[EP_MAX_SERVICES];
	uint32_t sweep_cursor;
	uint32_t miss_ip[8];
	uint64_t miss_tsc[8];
	struct ep_hold hold;                  /* packets waiting for their flow's fixed affinity */
	struct ep_counter_pair *stats_ip_counters; /* [EP_MAX_STATS_IPS] per forward IP */
	struct ep_lcore_counters c;
} __rte_cache_aligned;

struct ep_dp {
	int eal_ready;
	int created;
	volatile int running;
	struct ep_config cfg;
	uint64_t tsc_hz;
	uint64_t timeout_tsc[EP_TO__COUNT];

	uint32_t nworkers;
	struct ep_worker *workers[EP_MAX_WORKERS];
	struct rte_rcu_qsbr *qsbr;

	uint16_t nports;
	struct ep_port_rt ports[EP_MAX_PORTS];

	struct ep_affinity_table manager;
	struct ep_manager_extra *manager_extra; /* [affinity capacity] */
	uint32_t manager_gen;                   /* bumped after every install: held packets look again */
	uint64_t hold_timeout_tsc;
	uint32_t stats_ips[EP_MAX_STATS_IPS];   /* forward IPs with counters, by slot (control thread) */
	uint32_t nstats_ips;

	struct ep_wildcard_set *wildcards; /* swapped atomically */
	struct ep_service_rt *services[EP_MAX_SERVICES];
	/* bumped by ep_service_flush_server: flows pinned under an older epoch are forgotten */
	uint16_t *server_epochs; /* [EP_MAX_SERVICES * EP_MAX_SERVERS] */

	struct rte_lpm *lpm;
	struct ep_route_nh routes[EP_MAX_ROUTES];
	uint32_t nroutes;
	struct rte_hash *neigh_hash;
	struct ep_neighbor neighbors[EP_MAX_NEIGHBORS];
	uint32_t neigh_gen;
	struct ep_local_addr local[EP_MAX_LOCAL_ADDRS];

	struct rte_lpm6 *lpm6;
	struct ep_route6_nh routes6[EP_MAX_ROUTES6];
	uint32_t nroutes6;
	struct rte_hash *neigh6_hash;
	struct ep_neighbor neighbors6[EP_MAX_NEIGHBORS];
	struct ep_local_addr6 local6[EP_MAX_LOCAL_ADDRS];

	struct rte_ring *punt_ring;
	struct ep_unit_table *units;   /* swapped whole */
	volatile int replicating;
	struct rte_ring *flow_events;  /* workers -> control: struct ep_flow_record */
	uint64_t flow_events_lost;     /* bumped by workers (atomically: several producers) */
	struct rte_ring *inject_ring; /* control -> worker 0, which transmits on its own queues */
	struct rte_ring *process_ring; /* control -> worker 0, frames to run through the pipeline */
	struct rte_ring *event_ring;
	struct rte_mempool *ctrl_pool;
	uint64_t injected;
	struct ep_lcore_counters ctrl; /* counters bumped by the control thread */
};

extern struct ep_dp ep_dp;

/* error helpers */
int ep_fail(struct ep_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* flow_table.c */
int ep_flow_table_create(struct ep_flow_table *t, const char *name, uint32_t capacity, int socket);
void ep_flow_table_free(struct ep_flow_table *t);
static inline uint32_t ep_key16_hash(const struct ep_key16 *k)
{
	return rte_hash_crc_8byte(k->rest, rte_hash_crc_8byte(k->addrs, EP_HASH_SEED));
}
/* The hash every flow table uses (also as rte_hash's own hash function, so both agree): IPv4 keys
 * hash their 13 meaningful bytes, as struct ep_key16 (so the affinity table's hash of them is the
 * same value), instead of all 40. */
static inline uint32_t ep_key_hash(const struct ep_flow_key *k)
{
	if (likely(k->family == 4)) {
		struct ep_key16 k16;
		ep_key16_of4(k, &k16);
		return ep_key16_hash(&k16);
	}
	return rte_hash_crc(k, sizeof(*k), EP_HASH_SEED);
}
static inline uint16_t ep_unit_of(uint32_t client_ip, uint16_t client_port)
{
	return (uint16_t)(rte_hash_crc_8byte((uint64_t)client_ip << 16 | client_port, 0x0c1a57e5u) % EP_WORK_UNITS);
}

/* Prepares an exact-match flow's action for the worker's fast path: NAT checksum deltas (TCP/UDP
 * over IPv4) and EP_ACT_F2_PLAIN. */
void ep_action_prepare(struct ep_action *a, const struct ep_flow_key *k);
/* The action as installed: undoes ep_action_prepare for listing. */
void ep_action_public(struct ep_action *a);
/* Returns the slot or a negative errno; refreshes an existing key. */
int32_t ep_flow_table_put(struct ep_flow_table *t, const struct ep_flow_key *k);
int ep_flow_table_del(struct ep_flow_table *t, const struct ep_flow_key *k);
uint64_t ep_flow_timeout_tsc(const struct ep_flow *f, uint8_t proto);
void ep_flow_track_tcp(struct ep_flow *f, uint8_t tcp_flags);

/* affinity_table.c: put and del on the control thread; find (a lock-free lookup) on any */
/* counter_pairs: per position, one struct ep_counter_pair for each worker (ep_affinity_counters) */
int ep_affinity_table_create(struct ep_affinity_table *t, uint32_t capacity, uint32_t counter_pairs);
void ep_affinity_table_free(struct ep_affinity_table *t);
/* The affinity table's key for k: ep_key16_of4 for IPv4, a digest of the whole key otherwise. */
void ep_key16_of(const struct ep_flow_key *k, struct ep_key16 *out);
/* The position of k, or a negative errno. */
int32_t ep_affinity_table_find(const struct ep_affinity_table *t, const struct ep_flow_key *k);
/* A position for k, which must not be in the table; or a negative errno: -ENOSPC when full, -EEXIST
 * when another key has the same digest. */
int32_t ep_affinity_table_put(struct ep_affinity_table *t, const struct ep_flow_key *k);
/* 1 when k was there; its position is reused after an RCU grace period. */
int ep_affinity_table_del(struct ep_affinity_table *t, const struct ep_flow_key *k);

/* wildcard.c */
struct ep_wildcard_set *ep_wildcard_build(const struct ep_wildcard *rules, uint32_t n, struct ep_error *err);
void ep_wildcard_free(struct ep_wildcard_set *set);
void ep_wildcard_classify(const struct ep_wildcard_set *set, const uint8_t **data, uint32_t *results,
			  uint32_t n);
/* The best match among the rules without cascade (0 = none), for a packet a cascading rule matched. */
uint32_t ep_wildcard_classify_final(const struct ep_wildcard_set *set, const uint8_t *data);
/* The ACL input for a parsed IPv4 packet (network order fields, layout in wildcard.c). */
struct ep_acl_input {
	uint8_t proto;
	uint8_t pad[3];
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
};
static inline int ep_cascade_rule_matches(const struct ep_cascade_rule *r, const struct ep_acl_input *in)
{
	return (!r->proto || r->proto == in->proto) && (in->src & r->src_mask) == r->src &&
	       (in->dst & r->dst_mask) == r->dst && (!r->sport || r->sport == in->sport) &&
	       (!r->dport || r->dport == in->dport);
}
/* The index + 1 of the cascading rule named id (0 = none in this set). */
uint32_t ep_wildcard_cascading(const struct ep_wildcard_set *set, uint32_t id);

/* wildcard6.c: the IPv6 rules of a set (family 6) into set->acl6 */
int ep_wildcard6_build(struct ep_wildcard_set *set, const struct ep_wildcard *rules, uint32_t n, struct ep_error *err);
struct ep_acl_input6 {
	uint8_t proto;
	uint8_t pad[3];
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t sport;
	uint16_t dport;
};
/* Classifies one IPv6 packet; returns the matching rule's index + 1, or 0. */
uint32_t ep_wildcard6_classify(const struct ep_wildcard_set *set, const struct ep_acl_input6 *in);

/* service.c */
void ep_maglev_permutation(const struct ep_server *srv, uint32_t table_size, uint32_t *offset, uint32_t *skip);
int ep_maglev_build(struct ep_service_rt *svc);
int ep_wrr_build(struct ep_service_rt *svc);
/* Slot of the server for a new flow: by hash (Maglev) or by the worker's turn (WRR); -1 when the
 * service has no server taking new flows. */
static inline int ep_service_pick(const struct ep_service_rt *svc, uint32_t hash, uint32_t *turn)
{
	uint32_t at = svc->conf.algorithm == EP_ALG_WRR ? (*turn)++ : hash;
	uint16_t slot = svc->table[at % svc->pick_size];
	return slot == UINT16_MAX ? -1 : slot;
}

/* neighbor.c (control thread) */
int ep_neighbor_lookup(uint32_t ip, struct ep_neighbor *out);
int ep_route_lookup(uint32_t dst, uint16_t *port, uint32_t *next_hop);
int ep_local_lookup(uint32_t ip, uint16_t port);
/* The local address entry, or NULL. */
const struct ep_local_addr *ep_local_find(uint32_t ip, uint16_t port);
void ep_send_arp_request(uint16_t port, uint32_t target);
void ep_handle_events(void);

/* neighbor6.c (tables written by the control thread, read by workers) */
int ep_v6_tables_create(struct ep_error *err);
void ep_v6_tables_free(void);
int ep_route6_lookup(const uint8_t dst[16], uint16_t *port, uint8_t next_hop[16]);
int ep_neighbor6_lookup(const uint8_t ip[16], struct ep_neighbor *out);
const struct ep_local_addr6 *ep_local6_find(const uint8_t ip[16], uint16_t port);
int ep_local6_lookup(const uint8_t ip[16], uint16_t port);
void ep_handle_event6(const struct ep_event *ev);

/* dataplane.c: queue a frame for worker 0 to send (control-thread frames: ARP, injects) */
int ep_queue_tx(struct rte_mbuf *m, uint16_t port);

/* worker.c */
int ep_worker_main(void *arg);

/* rcu: wait until no worker can hold a pointer read before this call */
void ep_rcu_wait(void);

#endif
