/* See table_memory.h. */
#include "table_memory.h"

#include <stdint.h>
#include <sys/mman.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_malloc.h>

#define EP_THP_SIZE (2u << 20)

void *ep_table_alloc(const char *name, size_t size, int socket)
{
	if (rte_eal_has_hugepages())
		return rte_zmalloc_socket(name, size, RTE_CACHE_LINE_SIZE, socket);
	/* a transparent hugepage needs a 2 MiB aligned range: map one more and trim */
	size_t mapped = RTE_ALIGN_CEIL(size, EP_THP_SIZE) + EP_THP_SIZE;
	uint8_t *raw = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uint8_t *start = RTE_PTR_ALIGN_CEIL(raw, EP_THP_SIZE);
	uint8_t *end = start + RTE_ALIGN_CEIL(size, EP_THP_SIZE);
	if (start > raw)
		munmap(raw, (size_t)(start - raw));
	if (raw + mapped > end)
		munmap(end, (size_t)(raw + mapped - end));
	/* without THP (disabled on the host) this is plain 4 KiB memory: still correct */
	madvise(start, (size_t)(end - start), MADV_HUGEPAGE);
	for (uint8_t *p = start; p < end; p += 4096)
		*(volatile uint8_t *)p = 0;
	return start;
}

void ep_table_free(void *p, size_t size)
{
	if (!p)
		return;
	if (rte_eal_has_hugepages())
		rte_free(p);
	else
		munmap(p, RTE_ALIGN_CEIL(size, EP_THP_SIZE));
}
