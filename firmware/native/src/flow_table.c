/* Exact-match affinity tables: rte_hash in lock-free read mode with extendable buckets (so the
 * stated capacity is really available), values in a parallel array indexed by key position.
 * Deleted positions are recycled only after an RCU grace period (rte_hash_rcu_qsbr_add), so a
 * worker that found a slot can keep using it until its next quiescent report. */
#include <errno.h>
#include <string.h>

#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include "dp.h"
#include "packet.h"
#include "table_memory.h"

static uint32_t hash_fn(const void *key, uint32_t len, uint32_t init)
{
	(void)len;
	(void)init;
	return ep_key_hash(key);
}

/* rte_hash has no inline compare for 40-byte keys and would call memcmp: five 8-byte words,
 * combined without branches, are cheaper. */
static int key_cmp(const void *a, const void *b, size_t len)
{
	(void)len;
	const uint64_t *x = a, *y = b;
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) != 0;
}

/* Sets EP_ACT_F2_PLAIN when a hit needs nothing beyond the worker's fast path: an IPv4 forward with
 * at most a prepared NAT, a next hop and a TTL decrement (no QoS, tunnel or sequence adjustment). */
static void mark_plain(struct ep_action *a, const struct ep_flow_key *k)
{
	int nat = (a->nat_src_ip | a->nat_dst_ip | a->nat_src_port | a->nat_dst_port) != 0;
	int plain = k->family == 4 && a->type == EP_ACT_FORWARD &&
		    (a->dispatch == EP_DISPATCH_NONE || a->dispatch == EP_DISPATCH_MAC) &&
		    (a->flags & (uint8_t) ~(EP_ACT_F_NEXT_HOP | EP_ACT_F_NAT_PREPARED)) == 0 &&
		    !(a->flags2 & EP_ACT_F2_SEQ_ADJUST) && (!nat || (a->flags & EP_ACT_F_NAT_PREPARED));
	a->flags2 = (uint16_t)((a->flags2 & ~EP_ACT_F2_PLAIN) | (plain ? EP_ACT_F2_PLAIN : 0));
}

static void prepare_nat(struct ep_action *a, const struct ep_flow_key *k)
{
	a->nat_keep = 0;
	int nat = (a->nat_src_ip | a->nat_dst_ip | a->nat_src_port | a->nat_dst_port) != 0;
	if (!nat || k->family != 4 || (k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP))
		return;
	/* resolve "0 = keep" against the key once, so packets store all four values unconditionally */
	a->nat_keep = (uint8_t)((a->nat_src_ip == 0) | (a->nat_dst_ip == 0) << 1 | (a->nat_src_port == 0) << 2 |
				(a->nat_dst_port == 0) << 3);
	if (!a->nat_src_ip)
		a->nat_src_ip = ep_key_src4(k);
	if (!a->nat_dst_ip)
		a->nat_dst_ip = ep_key_dst4(k);
	if (!a->nat_src_port)
		a->nat_src_port = k->sport;
	if (!a->nat_dst_port)
		a->nat_dst_port = k->dport;
	ep_nat4_prepare(k, a->nat_src_ip, a->nat_src_port, a->nat_dst_ip, a->nat_dst_port, &a->nat_ip_delta,
			&a->nat_l4_delta);
	a->flags |= EP_ACT_F_NAT_PREPARED;
}

void ep_action_prepare(struct ep_action *a, const struct ep_flow_key *k)
{
	a->flags &= (uint8_t)~EP_ACT_F_NAT_PREPARED;
	prepare_nat(a, k);
	mark_plain(a, k);
}

void ep_action_public(struct ep_action *a)
{
	a->flags2 = 0;
	if (!(a->flags & EP_ACT_F_NAT_PREPARED))
		return;
	if (a->nat_keep & 1)
		a->nat_src_ip = 0;
	if (a->nat_keep & 2)
		a->nat_dst_ip = 0;
	if (a->nat_keep & 4)
		a->nat_src_port = 0;
	if (a->nat_keep & 8)
		a->nat_dst_port = 0;
	a->nat_keep = 0;
	a->nat_ip_delta = a->nat_l4_delta = 0;
	a->flags &= (uint8_t)~EP_ACT_F_NAT_PREPARED;
}

int ep_flow_table_create(struct ep_flow_table *t, const char *name, uint32_t capacity, int socket)
{
	struct rte_hash_parameters p = {
		.name = name,
		.entries = capacity,
		.key_len = sizeof(struct ep_flow_key),
		.hash_func = hash_fn,
		.hash_func_init_val = EP_HASH_SEED,
		.socket_id = socket,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	t->hash = rte_hash_create(&p);
	if (!t->hash)
		return -rte_errno;
	rte_hash_set_cmp_func(t->hash, key_cmp);
	/* rte_hash positions run from 0 to entries-1 (it reserves slot 0 internally) */
	t->capacity = capacity;
	t->flows = ep_table_alloc(name, sizeof(struct ep_flow) * (size_t)capacity, socket);
	if (!t->flows) {
		rte_hash_free(t->hash);
		t->hash = NULL;
		return -ENOMEM;
	}
	struct rte_hash_rcu_config rcu = {
		.v = ep_dp.qsbr,
		.mode = RTE_HASH_QSBR_MODE_DQ,
	};
	if (rte_hash_rcu_qsbr_add(t->hash, &rcu) != 0) {
		ep_flow_table_free(t);
		return -rte_errno;
	}
	return 0;
}

void ep_flow_table_free(struct ep_flow_table *t)
{
	rte_hash_free(t->hash);
	ep_table_free(t->flows, sizeof(struct ep_flow) * (size_t)t->capacity);
	memset(t, 0, sizeof(*t));
}

int32_t ep_flow_table_put(struct ep_flow_table *t, const struct ep_flow_key *k)
{
	int32_t pos = rte_hash_add_key_with_hash(t->hash, k, ep_key_hash(k));
	if (pos >= 0 && (uint32_t)pos >= t->capacity)
		return -ENOSPC; /* cannot happen with rte_hash's documented position range */
	return pos;
}

int ep_flow_table_del(struct ep_flow_table *t, const struct ep_flow_key *k)
{
	int32_t pos = rte_hash_del_key_with_hash(t->hash, k, ep_key_hash(k));
	if (pos < 0)
		return 0;
	if (t->flows[pos].in_use)
		t->live--;
	t->flows[pos].in_use = 0;
	return 1;
}

uint64_t ep_flow_timeout_tsc(const struct ep_flow *f, uint8_t proto)
{
	if (proto == IPPROTO_TCP) {
		switch (f->tcp_state) {
		case EP_TCPS_NONE: /* e.g. the reverse half of a connection whose server has not answered */
		case EP_TCPS_SYN:
			return ep_dp.timeout_tsc[EP_TO_SYN];
		case EP_TCPS_FIN:
			return ep_dp.timeout_tsc[EP_TO_FIN];
		case EP_TCPS_RST:
			return ep_dp.timeout_tsc[EP_TO_RST];
		default:
			return ep_dp.timeout_tsc[EP_TO_ESTABLISHED];
		}
	}
	return ep_dp.timeout_tsc[proto == IPPROTO_UDP ? EP_TO_UDP : EP_TO_OTHER];
}

/* The state of one direction of a TCP connection as its packets show it. RST and FIN are sticky
 * so a connection that is ending is not kept alive by stray ACKs. */
void ep_flow_track_tcp(struct ep_flow *f, uint8_t tcp_flags)
{
	uint8_t next = f->tcp_state;
	if (tcp_flags & EP_TCP_RST)
		next = EP_TCPS_RST;
	else if (f->tcp_state == EP_TCPS_RST)
		next = EP_TCPS_RST;
	else if (tcp_flags & EP_TCP_FIN)
		next = EP_TCPS_FIN;
	else if (f->tcp_state == EP_TCPS_FIN)
		next = EP_TCPS_FIN;
	else if (tcp_flags & EP_TCP_SYN)
		next = EP_TCPS_SYN;
	else if (tcp_flags & EP_TCP_ACK)
		next = EP_TCPS_ESTABLISHED;
	if (next != f->tcp_state)
		f->tcp_state = next;
}
