// Makes sure the programs the test suite talks to are on this machine:
// dnsmasq (the DNS server of the DNS resolver tests) and openssl (test
// certificates). Installs them with apt-get when running as root on Debian or
// Ubuntu; elsewhere says what to install. Runs before `pnpm test`.
import { execFileSync, spawnSync } from "node:child_process";

const wanted = [
  { command: "dnsmasq", aptPackage: "dnsmasq-base" },
  { command: "openssl", aptPackage: "openssl" },
];

const has = (command) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
const missing = wanted.filter(({ command }) => !has(command));
if (missing.length === 0) process.exit(0);

const packages = missing.map((m) => m.aptPackage);
if (process.getuid?.() === 0 && has("apt-get")) {
  console.log(`installing ${packages.join(", ")} for the tests (apt-get)`);
  const quiet = { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } };
  execFileSync("apt-get", ["update", "-q"], quiet);
  execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...packages], quiet);
} else {
  console.warn(
    `The tests need ${missing.map((m) => m.command).join(" and ")}; install ${packages.join(" ")} ` +
      "(Debian/Ubuntu package names). Tests that need them are skipped.",
  );
}
