// The map page's style: the basemap, then the API's vector-tile layers (spatial/tiles.py).
// Devices and events arrive as clusters (a `count` each) below zoom 13, as points above.

// [toggle name, MapLibre layer ids, shown at first]
export const TOGGLES = [
  ["towns", ["towns-fill", "towns-line", "towns-label"], true],
  ["grid", ["grid-line"], true],
  ["responsibility", ["resp-line", "resp-label"], false],
  ["devices", ["devices-cluster", "devices-point"], true],
  ["alarms", ["alarms-point"], true],
  ["events", ["events-point"], true],
  ["heat", ["events-heat"], false],
  ["cameras", ["cameras-point"], true],
  ["facilities", ["facilities-point"], false],
  ["components", ["components-point"], false],
];

const STATUS = ["match", ["get", "status"], "online", "#2ecc71", "offline", "#e74c3c", "#95a5a6"];
const SEVERITY = ["match", ["get", "severity"], "critical", "#ff2d55", "major", "#ff9500",
  "minor", "#ffd60a", "#64d2ff"];
const LIGHT = ["match", ["get", "light"], "red", "#ff3b30", "yellow", "#ffcc00", "green", "#34c759",
  "#8e8e93"];
const CLUSTER = ["has", "count"];

function tiles(origin, layer, minzoom = 0) {
  return { type: "vector", minzoom, maxzoom: 16, tiles: [tileUrl(origin, layer)] };
}

// events: only those reported in the last `days` (the heat map's period), on the server
export function tileUrl(origin, layer, days = null) {
  return `${origin}/v1/map/tiles/${layer}/{z}/{x}/{y}.mvt${days ? `?days=${days}` : ""}`;
}

function visible(shown, name) {
  return { visibility: shown[name] ? "visible" : "none" };
}

function basemapLayers(base) {
  if (base.kind === "pmtiles") return [{ id: "basemap", type: "raster", source: "basemap" }];
  return [
    { id: "basemap-fill", type: "fill", source: "basemap", paint: { "fill-color": "#0f2236" } },
    { id: "basemap-line", type: "line", source: "basemap",
      paint: { "line-color": "#4a90d9", "line-width": 1.5 } },
    { id: "basemap-label", type: "symbol", source: "basemap",
      layout: { "text-field": ["get", "name"], "text-size": 14 },
      paint: { "text-color": "#9fc3ea" } },
  ];
}

function areaLayers(shown) {
  return [
    { id: "towns-fill", type: "fill", source: "towns", "source-layer": "areas-town",
      layout: visible(shown, "towns"), paint: { "fill-color": "#1d3b5c", "fill-opacity": 0.25 } },
    { id: "towns-line", type: "line", source: "towns", "source-layer": "areas-town",
      layout: visible(shown, "towns"), paint: { "line-color": "#5dade2", "line-width": 1 } },
    { id: "towns-label", type: "symbol", source: "towns", "source-layer": "areas-town",
      layout: { ...visible(shown, "towns"), "text-field": ["get", "name"], "text-size": 12 },
      paint: { "text-color": "#d6eaf8" } },
    { id: "grid-line", type: "line", source: "grid", "source-layer": "areas-grid",
      layout: visible(shown, "grid"), paint: { "line-color": "#3d5a80", "line-width": 0.5 } },
    { id: "resp-line", type: "line", source: "resp", "source-layer": "areas-responsibility",
      layout: visible(shown, "responsibility"),
      paint: { "line-color": "#f39c12", "line-width": 1.5, "line-dasharray": [2, 2] } },
    // each responsibility area names its department (the dispatcher's first offer)
    { id: "resp-label", type: "symbol", source: "resp", "source-layer": "areas-responsibility",
      layout: { ...visible(shown, "responsibility"), "text-field": ["get", "department_name"],
        "text-size": 12 },
      paint: { "text-color": "#f8c471" } },
  ];
}

function thingLayers(shown) {
  return [
    { id: "events-heat", type: "heatmap", source: "events", "source-layer": "events",
      layout: visible(shown, "heat"),
      paint: { "heatmap-weight": ["coalesce", ["get", "count"], 1], "heatmap-radius": 24,
        "heatmap-opacity": 0.7 } },
    { id: "devices-cluster", type: "circle", source: "devices", "source-layer": "devices",
      filter: CLUSTER, layout: visible(shown, "devices"),
      paint: { "circle-color": "#2e86de",
        "circle-radius": ["interpolate", ["linear"], ["get", "count"], 1, 5, 100, 14, 10000, 28],
        "circle-opacity": 0.8, "circle-stroke-color": "#fff", "circle-stroke-width": 1 } },
    { id: "devices-point", type: "circle", source: "devices", "source-layer": "devices",
      filter: ["!", CLUSTER], layout: visible(shown, "devices"),
      paint: { "circle-color": STATUS, "circle-radius": 6, "circle-stroke-color": "#fff",
        "circle-stroke-width": 1 } },
    { id: "events-point", type: "circle", source: "events", "source-layer": "events",
      filter: ["!", CLUSTER], layout: visible(shown, "events"),
      paint: { "circle-color": LIGHT, "circle-radius": 5 } },
    { id: "facilities-point", type: "circle", source: "facilities", "source-layer": "facilities",
      layout: visible(shown, "facilities"),
      paint: { "circle-color": "#af52de", "circle-radius": 5, "circle-stroke-color": "#fff",
        "circle-stroke-width": 1 } },
    { id: "components-point", type: "circle", source: "components", "source-layer": "components",
      minzoom: 12, layout: visible(shown, "components"),
      paint: { "circle-color": ["match", ["get", "status"], "完好", "#5ac8fa", "#ff9f0a"],
        "circle-radius": 3 } },
    { id: "cameras-point", type: "circle", source: "cameras", "source-layer": "cameras",
      layout: visible(shown, "cameras"),
      paint: { "circle-color": "#00c7be", "circle-radius": 5, "circle-stroke-color": "#000",
        "circle-stroke-width": 1.5 } },
    { id: "alarms-point", type: "circle", source: "alarms", "source-layer": "alarms",
      layout: visible(shown, "alarms"),
      paint: { "circle-color": SEVERITY, "circle-radius": 9, "circle-opacity": 0.9,
        "circle-stroke-color": "#000", "circle-stroke-width": 1 } },
  ];
}

export function mapStyle(origin, base, shown) {
  return {
    version: 8,
    // answered empty by the API: CJK labels are drawn by the browser (see MapView.vue)
    glyphs: `${origin}/v1/map/glyphs/{fontstack}/{range}.pbf`,
    sources: {
      basemap: base.source,
      towns: tiles(origin, "areas-town"),
      grid: tiles(origin, "areas-grid", 11),
      resp: tiles(origin, "areas-responsibility"),
      devices: tiles(origin, "devices"),
      alarms: tiles(origin, "alarms"),
      events: { ...tiles(origin, "events"), tiles: [tileUrl(origin, "events", shown.days)] },
      cameras: tiles(origin, "cameras"),
      facilities: tiles(origin, "facilities"),
      components: tiles(origin, "components", 12),
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#07121f" } },
      ...basemapLayers(base), ...areaLayers(shown), ...thingLayers(shown),
    ],
  };
}

// The big screen's map: the basemap, towns and devices from tiles, and the open alarms and
// events as GeoJSON sources that the screen edits feature by feature from the live stream.
export const EMPTY = { type: "FeatureCollection", features: [] };

export function wallStyle(origin, base) {
  const shown = { towns: true, grid: false, responsibility: false, devices: true,
    cameras: true };
  return {
    version: 8,
    glyphs: `${origin}/v1/map/glyphs/{fontstack}/{range}.pbf`,
    sources: {
      basemap: base.source,
      towns: tiles(origin, "areas-town"),
      grid: tiles(origin, "areas-grid", 11),
      resp: tiles(origin, "areas-responsibility"),
      devices: tiles(origin, "devices"),
      cameras: tiles(origin, "cameras"),
      "live-events": { type: "geojson", data: EMPTY },
      "live-alarms": { type: "geojson", data: EMPTY },
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#07121f" } },
      ...basemapLayers(base), ...areaLayers(shown),
      ...thingLayers(shown).filter((l) => l.id.startsWith("devices-")
        || l.id === "cameras-point"),
      { id: "wall-events", type: "circle", source: "live-events",
        paint: { "circle-color": LIGHT, "circle-radius": 6, "circle-stroke-color": "#07121f",
          "circle-stroke-width": 1 } },
      { id: "wall-alarms-halo", type: "circle", source: "live-alarms",
        paint: { "circle-color": SEVERITY, "circle-radius": 16, "circle-opacity": 0.25 } },
      { id: "wall-alarms", type: "circle", source: "live-alarms",
        paint: { "circle-color": SEVERITY, "circle-radius": 8, "circle-stroke-color": "#000",
          "circle-stroke-width": 1 } },
    ],
  };
}
