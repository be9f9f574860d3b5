import type { PickCall } from "@meshlite/core";
import type { Downstream } from "./downstream.js";

/**
 * The call a balancer picks for, over a downstream request: its method from
 * the path (`/package.Service/Method`) and its request headers, read only
 * when a balancer asks.
 */
class DownstreamPickCall implements PickCall {
  constructor(private readonly down: Downstream) {}

  get method(): string {
    const path = this.down.path;
    const query = path.indexOf("?");
    return path.slice(1, query < 0 ? undefined : query);
  }

  header(name: string): string | undefined {
    const value = this.down.headers[name];
    return Array.isArray(value) ? value.join(", ") : value;
  }
}

export function downstreamPickCall(down: Downstream): PickCall {
  return new DownstreamPickCall(down);
}
