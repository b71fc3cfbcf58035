/* A cluster network in namespaces: every unit in its own namespace with eth0 on a bridge in a
 * switch namespace. Two bridges: moving ports to the second one partitions the cluster for real
 * (multicast and TLS both cut), moving them back heals it. */
import { inNamespace, run } from '../../netns/run.js';

export interface Lan {
  namespace(slot: number): string;
  address(slot: number): string;
  addSlot(slot: number): Promise<void>;
  /** Puts the slots on bridge 1 (cut off from bridge 0) or back on bridge 0. */
  partition(slots: number[], side: 0 | 1): Promise<void>;
  destroy(): Promise<void>;
}

export async function createLan(prefix: string): Promise<Lan> {
  const sw = `${prefix}-sw`;
  const slots = new Set<number>();
  const namespace = (slot: number) => `${prefix}-u${slot}`;
  const destroy = async () => {
    const existing = await run('ip', ['netns', 'list']);
    for (const line of existing.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      if (name.startsWith(`${prefix}-`)) await run('ip', ['netns', 'del', name]);
    }
  };
  await destroy();
  await run('ip', ['netns', 'add', sw]);
  for (const bridge of ['br0', 'br1']) {
    await inNamespace(sw, 'ip', ['link', 'add', bridge, 'type', 'bridge', 'mcast_snooping', '0']);
    await inNamespace(sw, 'ip', ['link', 'set', bridge, 'up']);
  }
  return {
    namespace,
    address: (slot) => `10.77.0.${10 + slot}`,
    async addSlot(slot) {
      if (slots.has(slot)) return;
      slots.add(slot);
      const ns = namespace(slot);
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['link', 'add', `p${slot}`, 'netns', sw, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await inNamespace(sw, 'ip', ['link', 'set', `p${slot}`, 'master', 'br0', 'up']);
      await inNamespace(ns, 'ip', ['link', 'set', 'lo', 'up']);
      await inNamespace(ns, 'ip', ['addr', 'add', `10.77.0.${10 + slot}/24`, 'dev', 'eth0']);
      await inNamespace(ns, 'ip', ['link', 'set', 'eth0', 'up']);
      await inNamespace(ns, 'ip', ['route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    },
    async partition(moved, side) {
      for (const slot of moved) await inNamespace(sw, 'ip', ['link', 'set', `p${slot}`, 'master', side === 0 ? 'br0' : 'br1']);
    },
    destroy,
  };
}
