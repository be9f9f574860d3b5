import type { DescMethod } from "@bufbuild/protobuf";
import type { PickCall } from "@meshlite/core";

/**
 * The call a balancer picks for, over a Connect call's method and request
 * headers. Nothing is copied or parsed until a balancer asks: a balancer that
 * reads neither costs this one small object per call.
 */
export class ConnectPickCall implements PickCall {
  constructor(
    private readonly desc: DescMethod,
    private readonly init: HeadersInit | undefined,
  ) {}

  get method(): string {
    return `${this.desc.parent.typeName}/${this.desc.name}`;
  }

  header(name: string): string | undefined {
    const init = this.init;
    if (init === undefined) return undefined;
    if (init instanceof Headers) return init.get(name) ?? undefined;
    const values: string[] = [];
    const pairs: Iterable<readonly [string, string]> = Array.isArray(init)
      ? (init as Array<[string, string]>)
      : Object.entries(init as Record<string, string>);
    for (const [key, value] of pairs) {
      if (key.toLowerCase() === name) values.push(value);
    }
    return values.length > 0 ? values.join(", ") : undefined;
  }
}
