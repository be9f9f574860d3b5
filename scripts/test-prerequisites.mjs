// Makes sure the programs the test suite talks to are on this machine:
// dnsmasq (the DNS server of the DNS resolver tests) and openssl (test
// certificates). Installs them with apt-get when running as root on Debian or
// Ubuntu; elsewhere says what to install. Runs before `pnpm test`.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const onPath = (command) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
// Where test/support/dnsmasq.ts looks for it: PATH, then the sbin directories
// that a non-root PATH often lacks.
const dnsmasqFound = () =>
  (process.env.PATH ?? "")
    .split(":")
    .concat(["/usr/sbin", "/sbin"])
    .some((dir) => dir !== "" && existsSync(join(dir, "dnsmasq")));

const wanted = [
  {
    command: "dnsmasq",
    aptPackage: "dnsmasq-base",
    found: dnsmasqFound,
    without: "fail (MESHLITE_SKIP_DNS_TESTS=1 skips them)",
  },
  { command: "openssl", aptPackage: "openssl", found: () => onPath("openssl"), without: "fail" },
];

const missing = wanted.filter(({ found }) => !found());
if (missing.length === 0) process.exit(0);

const packages = missing.map((m) => m.aptPackage);
if (process.getuid?.() === 0 && onPath("apt-get")) {
  console.log(`installing ${packages.join(", ")} for the tests (apt-get)`);
  const quiet = { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } };
  execFileSync("apt-get", ["update", "-q"], quiet);
  execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...packages], quiet);
} else {
  console.warn(
    `The tests need ${missing.map((m) => m.command).join(" and ")}; install ${packages.join(" ")} ` +
      `(Debian/Ubuntu package names). Without ${missing.length > 1 ? "them" : "it"}, ` +
      missing.map((m) => `tests that need ${m.command} ${m.without}`).join(" and ") +
      ".",
  );
}
