/* The per-worker hold buffer (see hold.h). A FIFO ring compacted in place by the sweep, which runs
 * only when the manager table changed or the oldest packet timed out, so its cost follows the
 * number of affinity installs, not the packet rate. */
#include <string.h>

#include <rte_malloc.h>

#include "dp.h"

int ep_hold_init(struct ep_hold *h, uint32_t capacity, int socket)
{
	memset(h, 0, sizeof(*h));
	uint32_t size = rte_align32pow2(capacity);
	h->slots = rte_zmalloc_socket("ep_hold", sizeof(struct ep_held) * size, RTE_CACHE_LINE_SIZE, socket);
	if (!h->slots)
		return -1;
	h->mask = size - 1;
	return 0;
}

uint32_t ep_hold_free(struct ep_hold *h)
{
	uint32_t n = h->count;
	for (uint32_t i = 0; i < h->count; i++)
		rte_pktmbuf_free(h->slots[(h->head + i) & h->mask].m);
	rte_free(h->slots);
	memset(h, 0, sizeof(*h));
	return n;
}

static inline uint32_t bucket_of(hash_sig_t sig)
{
	return sig % EP_HOLD_BUCKETS;
}

void ep_hold_put(struct ep_hold *h, struct rte_mbuf *m, const struct ep_flow_key *k, hash_sig_t sig, uint16_t port,
		 uint64_t now)
{
	struct ep_held *e = &h->slots[(h->head + h->count) & h->mask];
	e->m = m;
	e->since_tsc = now;
	e->sig = sig;
	e->port = port;
	e->key = *k;
	h->count++;
	h->per_bucket[bucket_of(sig)]++;
}

int ep_hold_has_flow(const struct ep_hold *h, const struct ep_flow_key *k, hash_sig_t sig)
{
	if (h->per_bucket[bucket_of(sig)] == 0)
		return 0;
	for (uint32_t i = 0; i < h->count; i++) {
		const struct ep_held *e = &h->slots[(h->head + i) & h->mask];
		if (e->sig == sig && memcmp(&e->key, k, sizeof(*k)) == 0)
			return 1;
	}
	return 0;
}

static int has_affinity(const struct ep_held *e)
{
	int32_t pos = ep_affinity_table_find(&ep_dp.manager, &e->key);
	return pos >= 0 && __atomic_load_n(&ep_affinity_flow(&ep_dp.manager, (uint32_t)pos)->in_use, __ATOMIC_ACQUIRE);
}

uint32_t ep_hold_sweep(struct ep_hold *h, uint64_t expired_before, struct ep_held *ready, uint32_t max,
		       uint64_t *expired)
{
	uint32_t nready = 0, kept = 0;
	for (uint32_t i = 0; i < h->count; i++) {
		struct ep_held *e = &h->slots[(h->head + i) & h->mask];
		int leaves = 0;
		if (nready < max && has_affinity(e)) {
			ready[nready++] = *e;
			leaves = 1;
		} else if (e->since_tsc < expired_before) {
			rte_pktmbuf_free(e->m);
			++*expired;
			leaves = 1;
		}
		if (leaves) {
			h->per_bucket[bucket_of(e->sig)]--;
			continue;
		}
		if (kept != i)
			h->slots[(h->head + kept) & h->mask] = *e;
		kept++;
	}
	h->count = kept;
	return nready;
}
