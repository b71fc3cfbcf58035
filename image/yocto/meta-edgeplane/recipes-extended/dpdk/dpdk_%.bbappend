# meta-dpdk ships its dpdk recipes with COMPATIBLE_MACHINE = "null" so that every product
# opts in for the machines it has validated. The appliance targets x86-64 only: the
# override leaves the recipe skipped for any other architecture.
COMPATIBLE_MACHINE:x86-64 = ".*"
