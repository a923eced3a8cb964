// The field app's installable parts (城管通, src/field/): a vite plugin that puts the web app
// manifest, the service worker and the icons under dist/m/, where the API serves them
// (api/console.py FIELD_FILES). The PNG icons are drawn here at build time (a ring and a dot
// on the console's dark blue, as icon.svg) so that no binary file is kept in the tree.
import { readFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const STATIC = new URL("../src/field/static/", import.meta.url);
const COPIED = ["manifest.webmanifest", "sw.js", "icon.svg"];

function crc32(bytes) {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k += 1) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

// RGBA of one pixel of the icon, in units of the icon's side (0..1)
function colour(x, y) {
  const r = Math.hypot(x - 0.5, y - 0.5);
  if (r < 0.11) return [0x3d, 0x7b, 0xff, 255];
  if (Math.abs(r - 0.293) < 0.035) return [0x2b, 0xd4, 0xff, 255];
  return [0x0a, 0x16, 0x28, 255]; // full square: the maskable icon's safe area is the middle
}

export function iconPng(size) {
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y += 1) {
    const row = y * (size * 4 + 1); // each row starts with filter type 0
    for (let x = 0; x < size; x += 1) {
      Buffer.from(colour((x + 0.5) / size, (y + 0.5) / size)).copy(raw, row + 1 + x * 4);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
                        chunk("IHDR", header), chunk("IDAT", deflateSync(raw)),
                        chunk("IEND", Buffer.alloc(0))]);
}

export function fieldApp() {
  return {
    name: "cityops-field-app",
    apply: "build",
    generateBundle() {
      for (const name of COPIED) {
        this.emitFile({ type: "asset", fileName: `m/${name}`,
                        source: readFileSync(new URL(name, STATIC)) });
      }
      for (const size of [192, 512]) {
        this.emitFile({ type: "asset", fileName: `m/icon-${size}.png`, source: iconPng(size) });
      }
    },
  };
}
