// Subsetting for large fleets (issue 15): connections and per-server load
// spread for deterministic aperture vs random (rendezvous-hash) subsetting
// vs none, and the connections moved when the fleet scales. Socket-free:
// every client is the real pool (policy pipeline, p2c) over fake
// connections, so the figures are the policy's, not the machine's.
//
// Run: pnpm bench:subset [--clients 30] [--servers 200] [--size 12] [--calls 10000]   (a few seconds)
import {
  callsPerServer,
  closeFleet,
  createFleet,
  type FleetMode,
  opened,
  sendCalls,
  spread,
} from "../test/support/subset-fleet.js";
import { parseArgs } from "./support/args.js";

const { clients, servers, size, calls } = parseArgs(
  { clients: 30, servers: 200, size: 12, calls: 10_000 },
  "tsx bench/subset.ts [--clients 30] [--servers 200] [--size 12] [--calls 10000]",
);

interface Row {
  mode: FleetMode;
  connections: number;
  maxPerClient: number;
  cv: number;
  maxDeviation: number;
  idle: number;
  serverMoves: number;
  clientMoves: number;
}

const addedServers = Math.max(1, Math.round(servers / 20));

async function measure(mode: FleetMode): Promise<Row> {
  const fleet = await createFleet(mode, clients, servers, size);
  try {
    const held = fleet.held().map((s) => s.size);
    const perServer = callsPerServer(fleet.servers, sendCalls(fleet.clients, calls));
    const { cv, maxDeviation } = spread(perServer);
    const before = fleet.held();
    await fleet.setServers(servers + addedServers);
    const after = fleet.held();
    await fleet.addClient();
    const withNew = fleet.held();
    return {
      mode,
      connections: held.reduce((a, b) => a + b, 0),
      maxPerClient: Math.max(...held),
      cv,
      maxDeviation,
      idle: perServer.filter((n) => n === 0).length,
      serverMoves: opened(before, after),
      clientMoves: opened(after, withNew),
    };
  } finally {
    await closeFleet(fleet.clients);
  }
}

async function main() {
  console.log(`${clients} clients x ${servers} servers, subset ${size}, ${calls} calls per client (p2c)`);
  const rows: Row[] = [];
  for (const mode of ["aperture", "random", "none"] as const) rows.push(await measure(mode));
  const header = [
    "mode",
    "connections",
    "max/client",
    "per-server CV",
    "max dev",
    "idle servers",
    `opened, +${addedServers} servers`,
    "opened, +1 client",
  ];
  const table = rows.map((r) => [
    r.mode,
    String(r.connections),
    String(r.maxPerClient),
    r.cv.toFixed(3),
    `${(r.maxDeviation * 100).toFixed(1)}%`,
    String(r.idle),
    String(r.serverMoves),
    String(r.clientMoves),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of table) console.log(line(row));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
