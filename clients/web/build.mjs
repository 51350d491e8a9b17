// Builds the console into dist/: one minified ES module, one stylesheet and
// index.html. Deterministic (no hashes, no timestamps), so `make gen-check`
// can tell a stale dist/ from a fresh one.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const modules = join(here, "node_modules");

// The stubs in clients/typescript/src/gen import @bufbuild/protobuf; resolve
// it (and every package) from this folder so the bundle holds one copy.
const onePackageCopy = {
  name: "one-package-copy",
  setup(b) {
    b.onResolve({ filter: /^@bufbuild\/protobuf/ }, (args) => {
      if (args.resolveDir.startsWith(here) && !args.resolveDir.includes("clients/typescript")) return undefined;
      return b.resolve(args.path, { kind: args.kind, resolveDir: modules });
    });
  },
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
await build({
  entryPoints: { app: join(here, "src/main.ts") },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "none",
  outdir: dist,
  plugins: [onePackageCopy],
  logLevel: "warning",
});
copyFileSync(join(here, "src/index.html"), join(dist, "index.html"));
copyFileSync(join(here, "src/style.css"), join(dist, "app.css"));
