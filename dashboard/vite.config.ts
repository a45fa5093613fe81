import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// Built into dist/dashboard at the package root, which src/server/dashboard.ts serves at /dashboard.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/dashboard/",
  // Preact's JSX runtime through Vite's own transform: no Babel-based plugin to install.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../dist/dashboard", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // No inlined data: URLs for assets and no source maps: a small, self-contained set of files.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: { proxy: { "/graphql": { target: "http://127.0.0.1:4000", ws: true }, "/jobs": "http://127.0.0.1:4000", "/dashboard/dev-token": "http://127.0.0.1:4000" } },
});
