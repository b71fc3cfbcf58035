// The dashboard: polls the management API once a second (same origin, same client certificate),
// derives rates from the data plane's counters and draws them as SVG line charts. Events (drains,
// weight changes, kills) are vertical markers on the charts' shared time axis.
const POLL_MS = 1000;
const WINDOW_MS = 120_000;
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];

const history = []; // { time, services: [...] }
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

function renderMembers(cluster) {
  document.getElementById('cluster-note').textContent = cluster.note ?? '';
  const body = document.querySelector('#members tbody');
  body.replaceChildren(
    ...cluster.members.map((member) => {
      const row = document.createElement('tr');
      const owned = cluster.workUnits.filter((w) => w.owner === member.id).map((w) => w.id);
      row.append(
        text('td', member.id),
        text('td', member.state, `state-${member.state}`),
        text('td', member.self ? 'yes' : ''),
        text('td', cluster.mode === 'single-unit' ? 'all (single unit)' : owned.join(', ')),
      );
      return row;
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
  for (const event of events) {
    const t = Date.parse(event.time);
    if (t < start) continue;
    nodes.push(element('line', { class: 'event', x1: x(t), y1: top, x2: x(t), y2: height - bottom }));
    nodes.push(element('text', { class: 'event-label', x: x(t) + 3, y: top + 10 }, `${event.kind} ${event.detail.server ?? ''}`));
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
    history.push({ time: Date.now(), services: status.services, ports: counters.ports });
    while (history.length && history[0].time < Date.now() - WINDOW_MS - POLL_MS) history.shift();
    document.getElementById('unit').textContent = `unit ${status.unit.id} - ${status.unit.state} - config ${status.configVersion.configDigest.slice(0, 12)} rev ${status.configVersion.revision}`;
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
