// Runs tests while CPU-bound processes occupy every core, as on a shared CI
// machine or beside a service at high CPU: `pnpm test:busy` runs the whole
// suite, `pnpm test:busy test/rollout.test.ts ...` the files given.
// BUSY_LOOPS sets how many busy loops run (default: one per core).
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";

const loops = Number(process.env.BUSY_LOOPS ?? availableParallelism());
if (!Number.isInteger(loops) || loops < 0) {
  console.error(`BUSY_LOOPS must be a whole number >= 0, got ${JSON.stringify(process.env.BUSY_LOOPS)}`);
  process.exit(2);
}
const busy = Array.from({ length: loops }, () => spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }));
const stopBusy = () => {
  for (const child of busy) child.kill("SIGKILL");
};
process.on("exit", stopBusy);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    stopBusy();
    process.exit(130);
  });
}
console.log(`running tests beside ${loops} busy loop${loops === 1 ? "" : "s"}`);
const tests = spawn("pnpm", ["exec", "vitest", "run", ...process.argv.slice(2)], { stdio: "inherit" });
tests.on("exit", (code, signal) => {
  stopBusy();
  process.exit(code ?? (signal ? 1 : 0));
});
