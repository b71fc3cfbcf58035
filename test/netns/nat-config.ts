/* The control application's configuration for a NAT virtual service on a topology: the VIP on the
 * client side, every server of the topology in the pool. Returned as the JSON document a config file
 * holds, so it goes through the same parser as an operator's file. */
import { VIP, CLIENT_GATEWAY, SERVER_GATEWAY, type Topology } from './topology.js';

export const SERVICE_NAME = 'web';

export function natConfig(topology: Topology, options: { filePrefix: string; httpPort: number }): Record<string, unknown> {
  return {
    eal: { lcores: [0, 1], memoryMb: 512, noHuge: true, filePrefix: options.filePrefix, vdevs: topology.vdevs },
    ports: [
      { device: 'net_af_packet0', address: CLIENT_GATEWAY, prefixLength: 24 },
      { device: 'net_af_packet1', address: SERVER_GATEWAY, prefixLength: 24 },
    ],
    services: [
      {
        name: SERVICE_NAME,
        vip: VIP,
        port: 80,
        protocol: 'tcp',
        algorithm: 'maglev',
        mode: 'nat',
        servers: topology.servers.map((server) => ({ address: server.ip, port: 80, weight: 1 })),
      },
    ],
    http: { host: '127.0.0.1', port: options.httpPort },
    log: { level: 'info' },
  };
}
