/* The manager's fixed-affinity table: rte_hash in lock-free read mode with extendable buckets,
 * keyed by struct ep_key16, the key position indexing the flows array (as flow_table.c does for
 * learned flows). Sixteen-byte keys are what rte_hash compares with one vector instruction and
 * stores in 32 bytes instead of 48 for a whole struct ep_flow_key, so a lookup touches one key line
 * and a 1M table takes 16 MB less.
 *
 * IPv4 keys, nearly all of them, fit those 16 bytes as they are. Any other key is stored under a
 * 128-bit digest of its 40 bytes (the family in its low byte, so it never equals an IPv4 key), and
 * the flow keeps the whole key: a hit counts only when the two are equal, so lookups stay exact.
 * Two installed keys with one digest, which no real key set produces, cannot both be added: the
 * second is refused as if the table were full. */
#include <errno.h>
#include <string.h>

#include <rte_jhash.h>
#include <rte_malloc.h>

#include "dp.h"

static uint32_t hash_fn(const void *key, uint32_t len, uint32_t init)
{
	(void)len;
	(void)init;
	return ep_key16_hash(key);
}

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

int ep_affinity_table_create(struct ep_affinity_table *t, uint32_t capacity)
{
	memset(t, 0, sizeof(*t));
	struct rte_hash_parameters p = {
		.name = "ep_affinities",
		.entries = capacity,
		.key_len = sizeof(struct ep_key16),
		.hash_func = hash_fn,
		.hash_func_init_val = EP_HASH_SEED,
		.socket_id = SOCKET_ID_ANY,
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
	};
	t->hash = rte_hash_create(&p);
	if (!t->hash)
		return -rte_errno;
	t->capacity = capacity;
	t->flows = rte_zmalloc("ep_affinity_flows", sizeof(struct ep_flow) * (size_t)capacity, RTE_CACHE_LINE_SIZE);
	struct rte_hash_rcu_config rcu = { .v = ep_dp.qsbr, .mode = RTE_HASH_QSBR_MODE_DQ };
	if (!t->flows || rte_hash_rcu_qsbr_add(t->hash, &rcu) != 0) {
		ep_affinity_table_free(t);
		return -ENOMEM;
	}
	return 0;
}

void ep_affinity_table_free(struct ep_affinity_table *t)
{
	rte_hash_free(t->hash);
	rte_free(t->flows);
	memset(t, 0, sizeof(*t));
}

/* The position of k16, and whether the flow there has the whole key k. */
static int32_t position(const struct ep_affinity_table *t, const struct ep_flow_key *k, const struct ep_key16 *k16,
			int *same_key)
{
	int32_t pos = rte_hash_lookup_with_hash(t->hash, k16, ep_key16_hash(k16));
	*same_key = pos >= 0 && (k->family == 4 || memcmp(&t->flows[pos].key, k, sizeof(*k)) == 0);
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

int32_t ep_affinity_table_put(struct ep_affinity_table *t, const struct ep_flow_key *k)
{
	struct ep_key16 k16;
	int same_key;
	ep_key16_of(k, &k16);
	/* rte_hash would take an equal key16 as this key's own: only a digest can be one already */
	if (k->family != 4 && position(t, k, &k16, &same_key) >= 0)
		return -EEXIST;
	int32_t pos = rte_hash_add_key_with_hash(t->hash, &k16, ep_key16_hash(&k16));
	if (pos >= 0 && (uint32_t)pos >= t->capacity)
		return -ENOSPC; /* cannot happen with rte_hash's documented position range */
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
	rte_hash_del_key_with_hash(t->hash, &k16, ep_key16_hash(&k16));
	if (t->flows[pos].in_use)
		t->live--;
	t->flows[pos].in_use = 0;
	return 1;
}
