/* Memory for the data plane's large tables (affinity buckets and flows), which only CPUs read: no
 * device DMAs into them, so they need not come from EAL's DMA-able memory.
 *
 * With EAL on hugepages they come from rte_malloc like everything else. With EAL on 4 KiB pages
 * (--no-huge: tests, a unit whose kernel reserved no hugepages) they are anonymous memory advised
 * for transparent hugepages: a hit touches a bucket, a flow and its counters at random places in
 * hundreds of megabytes, and on 4 KiB pages the active flows alone outgrow the TLB. The memory is
 * zeroed and faulted in here, on the control thread, never by a worker; in this case `socket` is not
 * honoured (the pages come from the control thread's NUMA node). */
#ifndef EP_TABLE_MEMORY_H
#define EP_TABLE_MEMORY_H

#include <stddef.h>

/* size bytes, zeroed, cache-line aligned; NULL when out of memory. */
void *ep_table_alloc(const char *name, size_t size, int socket);
/* p from ep_table_alloc with the same size (NULL is fine). */
void ep_table_free(void *p, size_t size);

#endif
