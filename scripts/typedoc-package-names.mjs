// TypeDoc plugin: names each module of the API reference by its npm package
// ("packages/core/src" -> "@meshlite/core", "packages/transport/src/connection"
// -> "@meshlite/transport/connection", "src" -> "meshlite"), so the reference
// reads like the imports a user writes.
import { Converter, ReflectionKind } from "typedoc";

export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const module of context.project.getReflectionsByKind(ReflectionKind.Module)) {
      const match = /^packages\/([^/]+)\/src(?:\/(.+))?$/.exec(module.name);
      if (match) module.name = `@meshlite/${match[1]}${match[2] ? `/${match[2]}` : ""}`;
      else if (module.name === "src") module.name = "meshlite";
    }
  });
}
