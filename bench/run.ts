/** Runs every benchmark in sequence: `pnpm bench`. */
import { runChannelOverhead } from "./channel-overhead.js";
import { runPickCost } from "./pick-cost.js";

runPickCost();
console.log();
await runChannelOverhead();
