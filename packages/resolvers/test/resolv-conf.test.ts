import { parseResolvConf, searchNames } from "@meshlite/resolvers";
import { describe, expect, it } from "vitest";

describe("parseResolvConf", () => {
  it("reads a Kubernetes pod's resolv.conf", () => {
    const conf = parseResolvConf(
      [
        "search shop.svc.cluster.local svc.cluster.local cluster.local",
        "nameserver 10.96.0.10",
        "options ndots:5 timeout:2",
      ].join("\n"),
    );
    expect(conf).toEqual({
      nameservers: ["10.96.0.10"],
      search: ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"],
      ndots: 5,
    });
  });

  it("takes the last search or domain line, ignores comments and unknown lines, caps ndots at 15", () => {
    const conf = parseResolvConf(
      "# generated\ndomain first.example\nsearch second.example. ; comment\nsortlist 10.0.0.0\noptions ndots:20\n",
    );
    expect(conf).toEqual({ nameservers: [], search: ["second.example"], ndots: 15 });
    expect(parseResolvConf("")).toEqual({ nameservers: [], search: [], ndots: 1 });
  });
});

describe("searchNames", () => {
  const search = ["shop.svc.cluster.local", "svc.cluster.local"];
  it("tries the search list first for names with fewer dots than ndots", () => {
    expect(searchNames("orders", search, 5)).toEqual([
      "orders.shop.svc.cluster.local",
      "orders.svc.cluster.local",
      "orders",
    ]);
  });
  it("tries the name as written first when it has at least ndots dots", () => {
    expect(searchNames("api.example.com", search, 2)).toEqual([
      "api.example.com",
      "api.example.com.shop.svc.cluster.local",
      "api.example.com.svc.cluster.local",
    ]);
  });
  it("queries an absolute name (trailing dot) alone", () => {
    expect(searchNames("orders.shop.svc.cluster.local.", search, 5)).toEqual(["orders.shop.svc.cluster.local"]);
  });
});
