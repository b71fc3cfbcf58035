/* The manager's fixed-affinity table (affinity_table.c): its layout and the lock-free lookup the
 * workers inline.
 *
 * Buckets are one cache line each and hold three struct ep_key16 with the position of each key's
 * flow, so a lookup reads one line (rte_hash read a bucket line, the other bucket's line and a key
 * line, and spent ~130 instructions a packet doing so). A key lives in its home bucket
 * (hash & bucket_mask) or, when that is full, in the first later bucket with room; `spill` counts
 * the keys whose home is this bucket or an earlier one and that live beyond it, so a lookup goes on
 * only while it is non-zero. Keys never move once placed. There are at least two slots per
 * position, so spills are rare.
 *
 * One writer (the control thread), lock-free readers: a writer rewriting a slot holds the bucket's
 * sequence count odd, and a reader whose read of a bucket overlapped a change reads it again.
 * A deleted key's position is reused only after an RCU grace period (ep_dp.qsbr), so a worker that
 * found a position may use its flow until it next reports quiescent. */
#ifndef EP_AFFINITY_TABLE_H
#define EP_AFFINITY_TABLE_H

#include <errno.h>
#include <stdint.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_pause.h>
#include <rte_prefetch.h>

#include "flow_key.h"

#define EP_AFF_SLOTS 3

struct ep_aff_bucket {
	struct ep_key16 key[EP_AFF_SLOTS]; /* all zero: empty (a real key's family byte is not 0) */
	uint32_t pos1[EP_AFF_SLOTS];       /* the key's flow position + 1 */
	uint16_t seq;                      /* odd while the writer changes a slot */
	uint16_t spill;
} __rte_cache_aligned;

_Static_assert(sizeof(struct ep_aff_bucket) == RTE_CACHE_LINE_SIZE, "a bucket is one cache line");

struct ep_flow;
struct rte_rcu_qsbr_dq;

struct ep_affinity_table {
	struct ep_aff_bucket *buckets;
	uint32_t bucket_mask;
	/* [capacity] by position: the flow, then one struct ep_counter_pair per worker, so a hit's flow
	 * and counter lines share a 4 KiB page (see ep_affinity_flow in dp.h) */
	uint8_t *slots;
	uint32_t slot_size;
	uint32_t capacity;
	/* entries in use */
	uint32_t live;
	/* control thread only: positions free now, and those freed after the next grace period */
	uint32_t *free_positions;
	uint32_t nfree;
	struct rte_rcu_qsbr_dq *deferred;
};

/* The position of the flow keyed k16 (whose ep_key16_hash is hash), or -ENOENT. */
static inline int32_t ep_affinity_table_lookup(const struct ep_affinity_table *t, const struct ep_key16 *k16,
					       uint32_t hash)
{
	uint32_t b = hash & t->bucket_mask;
	for (;;) {
		const struct ep_aff_bucket *bk = &t->buckets[b];
		uint16_t seq = __atomic_load_n(&bk->seq, __ATOMIC_ACQUIRE);
		if (unlikely(seq & 1)) {
			rte_pause();
			continue;
		}
		uint32_t pos1 = 0;
		for (int s = 0; s < EP_AFF_SLOTS; s++)
			if (((bk->key[s].addrs ^ k16->addrs) | (bk->key[s].rest ^ k16->rest)) == 0)
				pos1 = bk->pos1[s];
		uint16_t spill = bk->spill;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (unlikely(__atomic_load_n(&bk->seq, __ATOMIC_RELAXED) != seq))
			continue;
		if (likely(pos1))
			return (int32_t)pos1 - 1;
		if (likely(spill == 0))
			return -ENOENT;
		b = (b + 1) & t->bucket_mask;
	}
}

/* ep_affinity_table_lookup for n keys, their home buckets fetched before any is read. */
static inline void ep_affinity_table_lookup_bulk(const struct ep_affinity_table *t, const struct ep_key16 *keys,
						 const uint32_t *hashes, uint32_t n, int32_t *positions)
{
	for (uint32_t i = 0; i < n; i++)
		rte_prefetch0(&t->buckets[hashes[i] & t->bucket_mask]);
	for (uint32_t i = 0; i < n; i++)
		positions[i] = ep_affinity_table_lookup(t, &keys[i], hashes[i]);
}

#endif
