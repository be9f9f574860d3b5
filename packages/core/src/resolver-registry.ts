import type { ResolverFactory } from "./resolver.js";
import type { Target, TargetScheme } from "./target.js";

// Kept on globalThis so that an ESM and a CJS copy of this module (the dual
// package hazard) share one registry.
const registryKey = Symbol.for("meshlite.resolver-registry");
type Registry = Map<string, ResolverFactory>;

function registry(): Registry {
  const global = globalThis as { [registryKey]?: Registry };
  global[registryKey] ??= new Map();
  return global[registryKey];
}

/** Which package provides the resolver of each scheme. */
const providers: Record<TargetScheme, string> = {
  dns: "@meshlite/resolvers",
  static: "@meshlite/resolvers",
  k8s: "@meshlite/resolver-k8s",
};

/** Registers the resolver for a scheme; a later registration replaces an earlier one. */
export function registerResolver<S extends TargetScheme>(
  scheme: S,
  factory: ResolverFactory<Extract<Target, { scheme: S }>>,
): void {
  registry().set(scheme, factory as ResolverFactory);
}

/** Whether a resolver is registered for a scheme. */
export function hasResolver(scheme: TargetScheme): boolean {
  return registry().has(scheme);
}

/** Returns the resolver factory for a target, or throws an error that names the package providing it. */
export function getResolverFactory(target: Target): ResolverFactory {
  const factory = registry().get(target.scheme);
  if (factory === undefined) {
    const provider = providers[target.scheme];
    throw new Error(
      `no resolver for "${target.scheme}:" targets (target "${target.raw}"): it is provided by ${provider}; ` +
        `install it and import "${provider}" once at startup`,
    );
  }
  return factory;
}
