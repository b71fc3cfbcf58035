/* Two signed-policy versions for the policy tests: slot 1 starts with v3 (web -> server 1), slot 2
 * with v4 (web -> server 2, and web-b on a second VIP -> server 1), so a joining unit adopts v4. */
import { SERVER_IPS, VIP } from './shared-lan.js';

export const VIP_B = '10.0.1.101';
export const [SERVER_1, SERVER_2] = SERVER_IPS as [string, string];
const TIMING = { keepaliveIntervalMs: 50, memberDeadAfterMs: 500, masterSilenceMs: 100, rebalanceIntervalMs: 2000 };
const web = (server: string) => ({ name: 'web', vip: VIP, protocol: 'tcp', port: 80, algorithm: 'maglev', mode: 'nat', servers: [{ address: server, port: 80, weight: 1 }] });
const webB = { name: 'web-b', vip: VIP_B, protocol: 'tcp', port: 80, algorithm: 'wrr', mode: 'nat', servers: [{ address: SERVER_1, port: 80, weight: 1 }] };
export const POLICIES: Record<number, object> = {
  1: { configVersion: 3, cluster: TIMING, services: [web(SERVER_1)] },
  2: { configVersion: 4, cluster: TIMING, services: [web(SERVER_2), webB] },
};
