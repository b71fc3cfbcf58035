/* One load-balancing manager, driven by the test over IPC (and killed by it to test failover). */
import { LoadBalancingManager, type LoadBalancingManagerOptions } from '../../app/smfa/load-balancing-manager.js';
import { serveRequests } from './child.js';
import { authenticator } from './security.js';

export interface ManagerConfig extends Omit<LoadBalancingManagerOptions, 'transport'> {
  group: string;
  groupPort: number;
  senderId: number;
}

const config = JSON.parse(process.argv[2]!) as ManagerConfig;
const manager = await LoadBalancingManager.start({
  ...config,
  transport: {
    port: 0,
    group: config.group,
    groupPort: config.groupPort,
    multicastInterface: '127.0.0.1',
    multicastTtl: 0,
    authenticator: authenticator(config.senderId),
  },
});

serveRequests(
  manager.transport.port,
  {
    stats: () => ({ counters: manager.counters, decisions: manager.decisionCount, denies: manager.denies, transport: manager.transport.counters }),
    withdraw: () => manager.withdraw(),
    removeServer: (server) => manager.removeServer(server as { ip: string; port: number }),
  },
  () => manager.stop(),
);
