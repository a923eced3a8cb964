// Builds the console into dist/, which the API serves (api/web_serving.py): no CDN, no network
// at run time. `make web` runs this when package-lock.json or src/ changed.
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";
import { fieldApp } from "./scripts/fieldApp.mjs";

export default defineConfig({
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
  server: {
    // `npm run dev`: the API on its default port answers /v1 while vite serves the views
    proxy: { "/v1": "http://127.0.0.1:8080" },
  },
});
