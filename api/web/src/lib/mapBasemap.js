// The basemap every map of the console draws under the API's tiles: the county's PMTiles
// file (range requests to this API) or the default outline. Requests to the API carry the
// session's token; nothing is asked of any other host.
import maplibregl from "maplibre-gl/dist/maplibre-gl-csp.js";
import { FetchSource, PMTiles, Protocol } from "pmtiles";
import { api } from "./api.js";
import { session } from "./session.js";

const origin = window.location.origin;
let protocols = 0; // maps using the pmtiles protocol (the wall and the map page may both)

export function authorise(url) {
  return url.startsWith(`${origin}/v1/`)
    ? { url, headers: { Authorization: `Bearer ${session.token}` } } : { url };
}

export async function basemapSource() {
  const info = await api("/v1/map/basemap");
  if (info.kind === "pmtiles") {
    const protocol = new Protocol();
    if (protocols++ === 0) maplibregl.addProtocol("pmtiles", protocol.tile);
    const source = new FetchSource(`${origin}${info.url}`,
      new Headers({ Authorization: `Bearer ${session.token}` }));
    protocol.add(new PMTiles(source));
    return { kind: "pmtiles", source: { type: "raster", url: `pmtiles://${origin}${info.url}`,
      tileSize: 256, attribution: info.attribution } };
  }
  const data = await api(info.url);
  return { kind: "outline", source: { type: "geojson", data, attribution: info.attribution } };
}

// when a map that used the pmtiles basemap goes away
export function dropBasemap(base) {
  if (base?.kind === "pmtiles" && --protocols === 0) maplibregl.removeProtocol("pmtiles");
}
