/* bird2 configuration for the routes the agent advertises (SMFA-R14): one static route per
 * advertised prefix, exported to BGP neighbours and to nothing else. */
export interface BgpNeighbor {
  address: string;
  as: number;
}

export interface BirdSettings {
  routerId: string;
  localAs: number;
  neighbors: BgpNeighbor[];
}

export function birdConfig(settings: BirdSettings, prefixes: readonly string[]): string {
  const routes = prefixes.map((prefix) => `  route ${prefix} blackhole;`).join('\n');
  const neighbors = settings.neighbors
    .map(
      (n, i) => `protocol bgp peer${i + 1} {
  local as ${settings.localAs};
  neighbor ${n.address} as ${n.as};
  ipv4 { import none; export where proto = "advertised"; };
}`,
    )
    .join('\n\n');
  return `# Written by the forwarding agent (app/smfa/advertise.ts); replaced on every change.
router id ${settings.routerId};

protocol device { }

protocol static advertised {
  ipv4;
${routes}
}

${neighbors}
`;
}
