/* One cluster unit in its own process (started inside its namespace by the tests): loads its
 * flash config, runs a Member, stands in for the data plane by reporting every unassigned unit
 * it sees (as packets for them would), and talks to the test over the IPC channel. */
import { verifyFlashConfig } from '../../../flash-config/index.js';
import { Member } from '../../../app/cluster/member.js';

const settings = JSON.parse(process.env.CLUSTER_UNIT ?? '{}') as {
  dir: string;
  address: string;
  flashNow?: string;
  veto?: string;
  forgeVersion?: number;
  silenceMs?: number;
};
const send = (message: object) => process.send?.({ at: Date.now(), ...message });

const verified = await verifyFlashConfig(settings.dir, settings.flashNow ? { now: new Date(settings.flashNow) } : {});
// A tampered unit: the policy it passes on says another version, the signature is the original's.
const forged = settings.forgeVersion === undefined ? undefined : { ...verified.policy, configVersion: settings.forgeVersion };
const config = forged ? { ...verified, policy: forged, signedPolicy: { ...verified.signedPolicy, bytes: Buffer.from(JSON.stringify(forged)) } } : verified;
const member = new Member({
  config,
  address: settings.address,
  multicast: { group: '239.77.0.1', port: 7946 },
  joinPort: 7947,
  timing: { keepaliveMs: 50, detectionMs: 500, silenceMs: settings.silenceMs ?? 100, rebalanceMs: 2000, leaseGraceMs: 60_000 },
  numberSpaces: [{ name: 'fullnat-port', first: 1024, last: 65535, blockSize: 256 }],
  loadSource: () => [],
  log: (level, event, fields) => send({ kind: 'log', level, event, fields }),
});
if (settings.veto) {
  const vetoed = settings.veto;
  member.addJoinVeto((candidate) => (candidate.unitId === vetoed ? `${vetoed} is in a maintenance window` : undefined));
}
member.onOwnershipChange((units) => send({ kind: 'ownership', units }));
member.onRoleChange((role) => send({ kind: 'role', role }));

// Stand-in for the data plane's "packet for an unassigned unit" events: traffic on every unit.
setInterval(() => {
  const unassigned = member.ownership().filter((entry) => entry.owner === null && entry.state === 'foreign').map((entry) => entry.unit);
  if (unassigned.length > 0) member.reportUnassigned(unassigned).catch(() => undefined);
}, 150);

process.on('message', (raw) => {
  const command = raw as { id: number; cmd: string; space?: string };
  const reply = (result: unknown) => send({ kind: 'reply', id: command.id, result });
  if (command.cmd === 'state') {
    reply({
      role: member.role,
      masterId: member.masterId,
      members: member.memberIds,
      owned: member.ownership().filter((entry) => entry.state === 'owned').map((entry) => entry.unit),
      leases: member.leases,
      lastRefusal: member.lastRefusal,
      configVersion: member.policy.configVersion,
      services: member.policy.services.map((service) => service.name),
      accepted: member.guard.accepted,
      rejected: member.guard.rejected,
    });
  } else if (command.cmd === 'lease') {
    member.requestLease(command.space ?? '').then(
      (lease) => reply({ lease }),
      (error: Error) => reply({ error: error.message }),
    );
  } else if (command.cmd === 'stop') {
    void member.stop().then(() => process.exit(0));
  }
});
await member.start();
send({ kind: 'started' });
