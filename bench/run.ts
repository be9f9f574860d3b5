/** Runs every benchmark in sequence: `pnpm bench`. */
import { defaultOverheadOptions, runChannelOverhead } from "./channel-overhead.js";
import { runPickCost } from "./pick-cost.js";

runPickCost();
console.log();
// The balancing layer's own cost (same gRPC transport on both sides), then the channel as users get it.
await runChannelOverhead({ ...defaultOverheadOptions, connectNodeTransport: true });
console.log();
await runChannelOverhead();
