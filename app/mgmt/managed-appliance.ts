/* What the management API needs from the appliance: reading state and counters, changing server
 * weights and pools, listing and installing affinities. The Appliance class provides all of it. */
import type { Appliance } from '../control/appliance.js';

export type ManagedAppliance = Pick<
  Appliance,
  | 'state'
  | 'portStatus'
  | 'stats'
  | 'portDevice'
  | 'serviceName'
  | 'services'
  | 'setServerWeight'
  | 'replaceServers'
  | 'affinities'
  | 'addAffinity'
  | 'removeAffinity'
>;
