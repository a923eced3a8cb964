// Builds the console into dist/, which the API serves (api/web_serving.py): no CDN, no network
// at run time. `make web` runs this when package-lock.json or src/ changed.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";
import { fieldApp } from "./scripts/fieldApp.mjs";

// `npm run dev` passes /v1 to the API. `cityops stack up` serves it over HTTPS on 8443 (8080
// only redirects, which a proxy cannot follow for a POST), with a certificate of the local CA
// the stack wrote to var/tls/ca.crt: the dev server verifies it with that CA. Environment:
//   CITYOPS_DEV_API           the API's address (default https://127.0.0.1:8443)
//   CITYOPS_DEV_API_CA        the CA file to verify it with (default the stack's var/tls/ca.crt)
//   CITYOPS_DEV_API_INSECURE  1: no certificate check, for this dev server only (an API with a
//                             certificate you cannot get the CA of); never in anything deployed
function apiProxy(env) {
  const target = env.CITYOPS_DEV_API || "https://127.0.0.1:8443";
  if (!target.startsWith("https:")) return { target, changeOrigin: true };
  if (env.CITYOPS_DEV_API_INSECURE === "1") {
    console.warn(`dev server: NOT verifying the certificate of ${target} (CITYOPS_DEV_API_INSECURE)`);
    return { target, changeOrigin: true, secure: false };
  }
  const caFile = env.CITYOPS_DEV_API_CA
    || fileURLToPath(new URL("../../var/tls/ca.crt", import.meta.url));
  if (!existsSync(caFile)) {
    throw new Error(`dev server: no CA file ${caFile} to verify ${target} with: run ` +
      "`cityops stack up`, or set CITYOPS_DEV_API_CA (or CITYOPS_DEV_API_INSECURE=1)");
  }
  return { target, changeOrigin: true, secure: true, ca: readFileSync(caFile) };
}

export default defineConfig(({ command }) => ({
  plugins: [vue(), fieldApp()], // fieldApp: 城管通's manifest, service worker, icons (dist/m/)
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // the wall and the desks run current Chromium/Edge; no legacy polyfills
    target: "es2020",
    chunkSizeWarningLimit: 900,
    rollupOptions: {
      output: {
        // charts change less often than the views: a separate file stays cached
        manualChunks: { charts: ["echarts/core", "echarts/charts", "echarts/components",
                                 "echarts/renderers"] },
      },
    },
  },
  // only for `npm run dev`: a build reads no CA and needs no API
  server: command === "serve" ? { proxy: { "/v1": apiProxy(process.env) } } : {},
}));
