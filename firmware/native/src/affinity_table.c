/* The manager's fixed-affinity table: buckets of struct ep_key16 (layout and the workers' lookup in
 * affinity_table.h), the key position indexing the slots (a flow and its counters). Sixteen-byte keys fit three to a
 * cache line with their positions.
 *
 * IPv4 keys, nearly all of them, fit those 16 bytes as they are. Any other key is stored under a
 * 128-bit digest of its 40 bytes (the family in its low byte, so it never equals an IPv4 key), and
 * the flow keeps the whole key: a hit counts only when the two are equal, so lookups stay exact.
 * Two installed keys with one digest, which no real key set produces, cannot both be added: the
 * second is refused as if the table were full.
 *
 * Writes (put, del) come from the control thread only. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_jhash.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "dp.h"
#include "table_memory.h"

void ep_key16_of(const struct ep_flow_key *k, struct ep_key16 *out)
{
	if (k->family == 4) {
		ep_key16_of4(k, out);
		return;
	}
	/* lookup3 twice with different seeds: 128 bits that do not depend linearly on the key */
	uint32_t a = 0x6b657931, b = 0x36393170, c = 0x9e3779b9, d = 0x7f4a7c15;
	rte_jhash_2hashes(k, sizeof(*k), &a, &b);
	rte_jhash_2hashes(k, sizeof(*k), &c, &d);
	out->addrs = (uint64_t)a << 32 | b;
	out->rest = ((uint64_t)c << 32 | d) << 8 | k->family;
}

/* A deleted key's position, once no worker can still be using its flow. */
static void position_freed(void *table, void *position, unsigned int n)
{
	struct ep_affinity_table *t = table;
	(void)n; /* always 1 */
	t->free_positions[t->nfree++] = *(const uint32_t *)position;
}

int ep_affinity_table_create(struct ep_affinity_table *t, uint32_t capacity, uint32_t counter_pairs)
{
	memset(t, 0, sizeof(*t));
	if (capacity == 0 || capacity > (1u << 30))
		return -EINVAL;
	/* at least two slots per position: spills into the next bucket stay rare at any fill */
	uint32_t nbuckets = rte_align32pow2((uint32_t)(((uint64_t)capacity * 2 + EP_AFF_SLOTS - 1) / EP_AFF_SLOTS));
	t->buckets = ep_table_alloc("ep_affinity_buckets", sizeof(struct ep_aff_bucket) * (size_t)nbuckets,
				    SOCKET_ID_ANY);
	t->bucket_mask = nbuckets - 1;
	t->capacity = capacity;
	t->slot_size = (uint32_t)(sizeof(struct ep_flow) +
				  RTE_ALIGN_CEIL(sizeof(struct ep_counter_pair) * counter_pairs, RTE_CACHE_LINE_SIZE));
	t->slots = ep_table_alloc("ep_affinity_slots", (size_t)t->slot_size * capacity, SOCKET_ID_ANY);
	t->free_positions = rte_malloc("ep_affinity_free", sizeof(uint32_t) * (size_t)capacity, 0);
	static uint32_t tables_made; /* queue names must be unique (control thread only) */
	char name[RTE_RCU_QSBR_DQ_NAMESIZE];
	snprintf(name, sizeof(name), "ep_aff%u", tables_made++);
	struct rte_rcu_qsbr_dq_parameters dq = {
		.name = name,
		.flags = RTE_RCU_QSBR_DQ_MT_UNSAFE,
		.size = capacity,
		.esize = sizeof(uint32_t),
		/* as rte_hash does: reclaim a few on every delete once a few are waiting */
		.trigger_reclaim_limit = 32,
		.max_reclaim_size = 16,
		.free_fn = position_freed,
		.p = t,
		.v = ep_dp.qsbr,
	};
	if (t->buckets && t->slots && t->free_positions)
		t->deferred = rte_rcu_qsbr_dq_create(&dq);
	if (!t->deferred) {
		ep_affinity_table_free(t);
		return -ENOMEM;
	}
	/* popped from the end: positions 0, 1, 2... first */
	for (uint32_t i = 0; i < capacity; i++)
		t->free_positions[i] = capacity - 1 - i;
	t->nfree = capacity;
	return 0;
}

void ep_affinity_table_free(struct ep_affinity_table *t)
{
	/* the workers are offline by now: every deferred position is past its grace period */
	if (t->deferred && rte_rcu_qsbr_dq_delete(t->deferred) != 0) {
		ep_rcu_wait();
		rte_rcu_qsbr_dq_delete(t->deferred);
	}
	ep_table_free(t->buckets, sizeof(struct ep_aff_bucket) * ((size_t)t->bucket_mask + 1));
	ep_table_free(t->slots, (size_t)t->slot_size * t->capacity);
	rte_free(t->free_positions);
	memset(t, 0, sizeof(*t));
}

/* Where k16 sits: bucket index and slot, or -1. */
static int64_t slot_of(const struct ep_affinity_table *t, const struct ep_key16 *k16, uint32_t hash)
{
	uint32_t b = hash & t->bucket_mask;
	for (uint32_t probed = 0; probed <= t->bucket_mask; probed++, b = (b + 1) & t->bucket_mask) {
		const struct ep_aff_bucket *bk = &t->buckets[b];
		for (int s = 0; s < EP_AFF_SLOTS; s++)
			if (bk->key[s].addrs == k16->addrs && bk->key[s].rest == k16->rest)
				return (int64_t)b * EP_AFF_SLOTS + s;
		if (bk->spill == 0)
			break;
	}
	return -1;
}

/* Rewrites one slot while readers may be reading its bucket. */
static void write_slot(struct ep_aff_bucket *bk, int s, const struct ep_key16 *k16, uint32_t pos1)
{
	uint16_t seq = bk->seq;
	__atomic_store_n(&bk->seq, (uint16_t)(seq + 1), __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	bk->key[s] = *k16;
	bk->pos1[s] = pos1;
	__atomic_store_n(&bk->seq, (uint16_t)(seq + 2), __ATOMIC_RELEASE);
}

/* Adds delta to the spill count of the buckets from home up to, not including, bucket end. */
static void add_spill(struct ep_affinity_table *t, uint32_t home, uint32_t end, int delta)
{
	for (uint32_t b = home; b != end; b = (b + 1) & t->bucket_mask)
		__atomic_store_n(&t->buckets[b].spill, (uint16_t)(t->buckets[b].spill + delta), __ATOMIC_RELEASE);
}

/* The position of k16, and whether the flow there has the whole key k. */
static int32_t position(const struct ep_affinity_table *t, const struct ep_flow_key *k, const struct ep_key16 *k16,
			int *same_key)
{
	int32_t pos = ep_affinity_table_lookup(t, k16, ep_key16_hash(k16));
	*same_key = pos >= 0 && (k->family == 4 || memcmp(&ep_affinity_flow(t, (uint32_t)pos)->key, k, sizeof(*k)) == 0);
	return pos;
}

int32_t ep_affinity_table_find(const struct ep_affinity_table *t, const struct ep_flow_key *k)
{
	struct ep_key16 k16;
	int same_key;
	ep_key16_of(k, &k16);
	int32_t pos = position(t, k, &k16, &same_key);
	return same_key ? pos : -ENOENT;
}

/* A free position; waits for a grace period when only deleted ones are left. */
static int32_t take_position(struct ep_affinity_table *t)
{
	unsigned int freed, pending, available;
	if (t->nfree == 0) {
		rte_rcu_qsbr_dq_reclaim(t->deferred, t->capacity, &freed, &pending, &available);
		if (t->nfree == 0 && pending > 0) {
			ep_rcu_wait();
			rte_rcu_qsbr_dq_reclaim(t->deferred, t->capacity, &freed, &pending, &available);
		}
	}
	return t->nfree ? (int32_t)t->free_positions[--t->nfree] : -ENOSPC;
}

int32_t ep_affinity_table_put(struct ep_affinity_table *t, const struct ep_flow_key *k)
{
	struct ep_key16 k16;
	int same_key;
	ep_key16_of(k, &k16);
	int32_t pos = position(t, k, &k16, &same_key);
	if (pos >= 0) /* IPv4: the key itself; any other: a key with the same digest */
		return k->family == 4 ? pos : -EEXIST;
	uint32_t home = ep_key16_hash(&k16) & t->bucket_mask, b = home;
	int s = -1;
	for (uint32_t probed = 0; s < 0 && probed <= t->bucket_mask; probed++) {
		for (int i = 0; i < EP_AFF_SLOTS && s < 0; i++)
			if (t->buckets[b].pos1[i] == 0)
				s = i;
		if (s < 0)
			b = (b + 1) & t->bucket_mask;
	}
	if (s < 0 || (pos = take_position(t)) < 0)
		return -ENOSPC;
	add_spill(t, home, b, +1); /* before the key shows: a reader may look on in vain, never miss */
	write_slot(&t->buckets[b], s, &k16, (uint32_t)pos + 1);
	return pos;
}

int ep_affinity_table_del(struct ep_affinity_table *t, const struct ep_flow_key *k)
{
	struct ep_key16 k16;
	int same_key;
	ep_key16_of(k, &k16);
	int32_t pos = position(t, k, &k16, &same_key);
	if (!same_key)
		return 0;
	uint32_t hash = ep_key16_hash(&k16);
	int64_t at = slot_of(t, &k16, hash);
	uint32_t b = (uint32_t)(at / EP_AFF_SLOTS);
	static const struct ep_key16 empty;
	write_slot(&t->buckets[b], (int)(at % EP_AFF_SLOTS), &empty, 0);
	add_spill(t, hash & t->bucket_mask, b, -1);
	uint32_t p = (uint32_t)pos;
	struct ep_flow *f = ep_affinity_flow(t, p);
	if (f->in_use)
		t->live--;
	f->in_use = 0;
	rte_rcu_qsbr_dq_enqueue(t->deferred, &p); /* cannot be full: it holds every position */
	return 1;
}
