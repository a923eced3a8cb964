// Photos taken or chosen on the phone: checked before anything is sent (an image the browser
// can read, not absurdly large), then resized here to a JPEG of at most MAX_SIDE pixels, so a
// 12-megapixel camera shot (3.9 MB) goes up as ~130 KB over a weak mobile link. The preview
// is a data: URL: the console's CSP admits data: images, not blob: ones.
import { blobToDataUrl } from "../lib/files.js";

export const MAX_PHOTOS = 6;
export const MAX_SOURCE_BYTES = 30 * 1024 * 1024; // before resizing; the API takes 20 MB after
const MAX_SIDE = 1280;
const QUALITY = 0.78;
const READABLE = ["image/jpeg", "image/png", "image/webp"];

export class PhotoRefused extends Error {
  constructor(reason, name) {
    super(reason);
    this.reason = reason; // "type" or "size" or "unreadable": the view words it
    this.name_ = name;
  }
}

export function checkPhoto(file) {
  if (!READABLE.includes(file.type)) throw new PhotoRefused("type", file.name);
  if (file.size > MAX_SOURCE_BYTES) throw new PhotoRefused("size", file.name);
}

// -> { name, dataUrl, bytes } of the resized JPEG
export async function resizePhoto(file) {
  checkPhoto(file);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new PhotoRefused("unreadable", file.name);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  const dataUrl = canvas.toDataURL("image/jpeg", QUALITY);
  const name = `${file.name.replace(/\.[^.]*$/, "") || "photo"}.jpg`;
  return { name, dataUrl, bytes: Math.round((dataUrl.length - 23) * 0.75) };
}

// a data: URL back to bytes for the upload (fetch() of a data: URL is outside connect-src)
export function dataUrlToBlob(dataUrl) {
  const [head, body] = dataUrl.split(",");
  const type = /data:([^;]+)/.exec(head)?.[1] || "image/jpeg";
  const raw = atob(body);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return new Blob([bytes], { type });
}

// an attachment of an event as a data: URL, read with the bearer token
export async function attachmentUrl(eventId, objectId, token) {
  const res = await fetch(`/v1/events/${eventId}/attachments/${objectId}`,
                          { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return blobToDataUrl(await res.blob());
}
