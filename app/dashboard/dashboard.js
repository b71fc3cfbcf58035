// The dashboard: polls the management API once a second (same origin, same client certificate),
// derives rates from the data plane's counters and draws them as SVG line charts. On a cluster the
// API answers cluster-wide (every member's counters added up) and lists the members, their health
// and the owner of every work unit. Events (drains, server changes, kills, members leaving, new
// masters) are vertical markers on the charts' shared time axis.
const POLL_MS = 1000;
const WINDOW_MS = 120_000;
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];

const FAILOVERS = new Set(['member-left', 'master', 'role']);
const history = []; // { time, services: [...], ports: [...], members: { id: txBytes } }
const ownerColors = new Map();
let events = [];

async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${(await response.text()).slice(0, 200)}`);
  return response.json();
}

function text(tag, value, className) {
  const cell = document.createElement(tag);
  cell.textContent = String(value);
  if (className) cell.className = className;
  return cell;
}

function formatBits(bitsPerSecond) {
  const units = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s'];
  let value = bitsPerSecond;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return `${value.toFixed(value < 10 && unit > 0 ? 2 : 0)} ${units[unit]}`;
}

/** Per-second rates of a server's counters between the last two samples. */
function serverRates(serviceName, server) {
  if (history.length < 2) return { bitsPerSecond: 0, newPerSecond: 0 };
  const [before, after] = history.slice(-2);
  const find = (sample) => sample.services.find((s) => s.name === serviceName)?.servers.find((s) => s.server === server);
  const a = find(before);
  const b = find(after);
  const seconds = (after.time - before.time) / 1000;
  if (!a || !b || seconds <= 0) return { bitsPerSecond: 0, newPerSecond: 0 };
  return { bitsPerSecond: ((b.bytes - a.bytes) * 8) / seconds, newPerSecond: (b.flows - a.flows) / seconds };
}

function ownerColor(owner) {
  if (owner === null) return '#e3e5ea';
  if (!ownerColors.has(owner)) ownerColors.set(owner, COLORS[ownerColors.size % COLORS.length]);
  return ownerColors.get(owner);
}

function renderMembers(cluster) {
  const clustered = cluster.mode === 'cluster';
  document.getElementById('cluster-note').textContent = clustered
    ? `${cluster.members.length} member(s), ${cluster.members.filter((m) => m.health === 'ok').length} healthy, master ${cluster.masterId ?? 'none'}; ${cluster.workUnits.total - cluster.workUnits.unassigned} of ${cluster.workUnits.total} work units assigned`
    : cluster.note ?? '';
  document.getElementById('cluster-note').dataset.members = String(cluster.members.length);
  const body = document.querySelector('#members tbody');
  body.replaceChildren(
    ...cluster.members.map((member) => {
      const row = document.createElement('tr');
      row.dataset.unit = member.id;
      const role = member.role ?? member.state;
      row.append(
        text('td', `${member.id}${member.self ? ' (this unit)' : ''}`),
        text('td', member.address ?? '-'),
        text('td', role, `role-${role}`),
        text('td', member.health ?? member.state, `health-${member.health ?? member.state}`),
        text('td', clustered ? member.ownedUnits : 'all (single unit)', 'num'),
        text('td', member.lastKeepaliveMsAgo == null ? '-' : `${member.lastKeepaliveMsAgo} ms ago`, 'num'),
        text('td', member.answeredInMs == null ? (member.error ? 'no answer' : '-') : `${member.answeredInMs} ms`, 'num'),
      );
      row.children[3].dataset.field = 'health';
      row.children[4].dataset.field = 'ownedUnits';
      return row;
    }),
  );
  renderWorkUnits(cluster);
}

/** 32 x 32 cells, one per work unit, coloured by owner; only changed cells are touched. */
function renderWorkUnits(cluster) {
  const svg = document.getElementById('workunits');
  const owners = cluster.mode === 'cluster' ? cluster.workUnits.owners : Array.from({ length: cluster.workUnits.total }, () => cluster.members[0]?.id ?? null);
  if (svg.childElementCount !== owners.length) {
    const ns = 'http://www.w3.org/2000/svg';
    svg.replaceChildren(
      ...owners.map((_, unit) => {
        const cell = document.createElementNS(ns, 'rect');
        cell.setAttribute('x', String((unit % 32) * 10));
        cell.setAttribute('y', String(Math.floor(unit / 32) * 10));
        cell.setAttribute('width', '9');
        cell.setAttribute('height', '9');
        cell.appendChild(document.createElementNS(ns, 'title'));
        return cell;
      }),
    );
  }
  owners.forEach((owner, unit) => {
    const cell = svg.children[unit];
    if (cell.dataset.owner === String(owner)) return;
    cell.dataset.owner = String(owner);
    cell.setAttribute('fill', ownerColor(owner));
    cell.firstChild.textContent = `work unit ${unit}: ${owner ?? 'unassigned'}`;
  });
  const counts = new Map();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  document.getElementById('legend-workunits').replaceChildren(
    ...[...counts].map(([owner, count]) => {
      const label = text('span', `■ ${owner ?? 'unassigned'} ${count}`);
      label.style.color = ownerColor(owner);
      label.dataset.owner = String(owner);
      label.dataset.count = String(count);
      return label;
    }),
  );
}

function renderServers(services) {
  const body = document.querySelector('#servers tbody');
  body.replaceChildren(
    ...services.flatMap((service) =>
      service.servers.map((server) => {
        const rates = serverRates(service.name, server.server);
        const row = document.createElement('tr');
        row.dataset.service = service.name;
        row.dataset.server = server.server;
        row.append(
          text('td', service.name),
          text('td', server.server),
          text('td', server.state, `state-${server.state}`),
          text('td', server.weight, 'num'),
          text('td', server.activeFlows, 'num'),
          text('td', rates.newPerSecond.toFixed(1), 'num'),
          text('td', formatBits(rates.bitsPerSecond), 'num'),
          text('td', server.flows, 'num'),
          text('td', (server.units ?? []).map((share) => `${share.unit} ${share.activeFlows}`).join(', ') || '-'),
        );
        row.children[4].dataset.field = 'activeFlows';
        row.children[6].dataset.field = 'throughput';
        row.children[6].dataset.bitsPerSecond = String(Math.round(rates.bitsPerSecond));
        row.children[7].dataset.field = 'flows';
        row.children[3].dataset.field = 'weight';
        row.children[2].dataset.field = 'state';
        return row;
      }),
    ),
  );
}

function renderEvents() {
  const body = document.querySelector('#events tbody');
  body.replaceChildren(
    ...events.slice().reverse().map((event) => {
      const row = document.createElement('tr');
      row.dataset.kind = event.kind;
      if (FAILOVERS.has(event.kind)) row.className = 'failover';
      row.append(
        text('td', new Date(event.time).toLocaleTimeString()),
        text('td', event.kind),
        text('td', event.by),
        text('td', Object.entries(event.detail).map(([k, v]) => `${k}=${v}`).join(' ')),
      );
      return row;
    }),
  );
}

/** series: [{ name, points: [[time, value], ...] }] drawn over the last WINDOW_MS; the value axis
 * reaches at least smallestMax. */
function drawChart(id, series, format, smallestMax = 1) {
  const svg = document.getElementById(id);
  const width = 600, height = 180, left = 70, bottom = 20, top = 10;
  const now = Date.now();
  const start = now - WINDOW_MS;
  const max = Math.max(smallestMax, ...series.flatMap((s) => s.points.map(([, v]) => v)));
  const x = (t) => left + ((t - start) / WINDOW_MS) * (width - left - 5);
  const y = (v) => height - bottom - (v / max) * (height - bottom - top);
  const ns = 'http://www.w3.org/2000/svg';
  const element = (name, attributes, content) => {
    const node = document.createElementNS(ns, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (content !== undefined) node.textContent = content;
    return node;
  };
  const nodes = [
    element('line', { class: 'axis', x1: left, y1: height - bottom, x2: width, y2: height - bottom }),
    element('line', { class: 'axis', x1: left, y1: top, x2: left, y2: height - bottom }),
    element('text', { class: 'label', x: 2, y: top + 8 }, format(max)),
    element('text', { class: 'label', x: 2, y: height - bottom }, format(0)),
    element('text', { class: 'label', x: left, y: height - 4 }, '-2 min'),
    element('text', { class: 'label', x: width - 30, y: height - 4 }, 'now'),
  ];
  // Labels stagger over four rows and are left out where they would overprint a neighbour's.
  const lastLabel = [-Infinity, -Infinity, -Infinity, -Infinity];
  for (const event of events) {
    const t = Date.parse(event.time);
    if (t < start) continue;
    const kind = FAILOVERS.has(event.kind) ? ' failover' : '';
    nodes.push(element('line', { class: `event${kind}`, x1: x(t), y1: top, x2: x(t), y2: height - bottom }));
    const row = lastLabel.findIndex((at) => x(t) - at > 90);
    if (row < 0) continue;
    lastLabel[row] = x(t);
    nodes.push(element('text', { class: `event-label${kind}`, x: x(t) + 3, y: top + 10 + row * 11 }, `${event.kind} ${event.detail.server ?? event.detail.unit ?? ''}`));
  }
  series.forEach((s, i) => {
    const points = s.points.filter(([t]) => t >= start).map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    nodes.push(element('polyline', { points, fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2, 'data-series': s.name }));
  });
  svg.replaceChildren(...nodes);
  document.getElementById(id.replace('chart-', 'legend-')).replaceChildren(
    ...series.map((s, i) => {
      const label = text('span', `■ ${s.name}`);
      label.style.color = COLORS[i % COLORS.length];
      return label;
    }),
  );
}

/** Rates between consecutive samples, per key. */
function rateSeries(keys, pick) {
  return keys.map(({ name, match }) => ({
    name,
    points: history.slice(1).map((sample, i) => {
      const previous = history[i];
      const seconds = (sample.time - previous.time) / 1000;
      return [sample.time, Math.max(0, (pick(sample, match) - pick(previous, match)) / seconds)];
    }),
  }));
}

function drawCharts(services) {
  const serviceKeys = services.map((s) => ({ name: s.name, match: s.name }));
  const serverKeys = services.flatMap((s) => s.servers.map((server) => ({ name: `${s.name} ${server.server}`, match: [s.name, server.server] })));
  const serviceBits = (sample, name) => 8 * (sample.services.find((s) => s.name === name)?.servers.reduce((sum, s) => sum + s.bytes, 0) ?? 0);
  const server = (sample, [serviceName, id]) => sample.services.find((s) => s.name === serviceName)?.servers.find((s) => s.server === id);
  drawChart('chart-throughput', rateSeries(serviceKeys, serviceBits), formatBits);
  drawChart('chart-server-throughput', rateSeries(serverKeys, (sample, key) => 8 * (server(sample, key)?.bytes ?? 0)), formatBits);
  const memberIds = Object.keys(history.at(-1)?.members ?? {});
  drawChart('chart-members', rateSeries(memberIds.map((id) => ({ name: id, match: id })), (sample, id) => 8 * (sample.members[id] ?? 0)), formatBits);
  const ports = history.at(-1)?.ports ?? [];
  drawChart('chart-ports', rateSeries(ports.map((p) => ({ name: p.device, match: p.device })), (sample, device) => 8 * (sample.ports.find((p) => p.device === device)?.txBytes ?? 0)), formatBits);
  drawChart('chart-new', rateSeries(serverKeys, (sample, key) => server(sample, key)?.flows ?? 0), (v) => `${v.toFixed(1)}/s`);
  // the mean setup time of the connections opened since the start of the window, as it grows
  drawChart(
    'chart-response',
    serverKeys.map(({ name, match }) => ({
      name,
      points: history.slice(1).flatMap((sample) => {
        const now = server(sample, match);
        const first = server(history[0], match);
        const opened = (now?.handshakes ?? 0) - (first?.handshakes ?? 0);
        return opened > 0 ? [[sample.time, (now.handshakeMicros - first.handshakeMicros) / opened / 1000]] : [];
      }),
    })),
    (v) => `${v.toFixed(2)} ms`,
    0.05, // setup times on a LAN are fractions of a millisecond
  );
  drawChart(
    'chart-connections',
    serverKeys.map(({ name, match }) => ({ name, points: history.map((sample) => [sample.time, server(sample, match)?.activeFlows ?? 0]) })),
    (v) => v.toFixed(0),
  );
}

async function refresh() {
  try {
    const [status, counters, newEvents] = await Promise.all([getJson('/api/status'), getJson('/api/counters'), getJson(`/api/events?since=${events.at(-1)?.sequence ?? 0}`)]);
    events = events.concat(newEvents.filter((event) => event.sequence > (events.at(-1)?.sequence ?? 0)));
    // Each member's transmitted bytes: its own counters on a cluster, this unit's alone otherwise.
    const members = Object.fromEntries(
      (counters.units ?? [{ unit: status.unit.id, ok: true, counters }]).filter((u) => u.ok).map((u) => [u.unit, u.counters.ports.reduce((sum, p) => sum + p.txBytes, 0)]),
    );
    history.push({ time: Date.now(), services: status.services, ports: counters.ports, members });
    while (history.length && history[0].time < Date.now() - WINDOW_MS - POLL_MS) history.shift();
    const role = status.cluster.mode === 'cluster' ? ` - cluster ${status.cluster.role}` : '';
    document.getElementById('unit').textContent = `unit ${status.unit.id} - ${status.unit.state}${role} - config ${status.configVersion.configDigest.slice(0, 12)} rev ${status.configVersion.revision}`;
    renderMembers(status.cluster);
    renderServers(status.services);
    renderEvents();
    drawCharts(status.services);
    document.getElementById('error').hidden = true;
    const updated = document.getElementById('updated');
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    updated.dataset.samples = String(history.length);
  } catch (error) {
    const banner = document.getElementById('error');
    banner.textContent = `cannot read the management API: ${error.message}`;
    banner.hidden = false;
  }
}

// One poll at a time: a slow answer must not let two polls interleave their samples.
async function poll() {
  await refresh();
  setTimeout(poll, POLL_MS);
}
poll();
