// A camera of the map and its ONVIF device (docs/video.md): status, the latest snapshot as a
// data: URL (the image needs the bearer token, which an <img src> cannot send; the console's
// CSP admits data: images, not blob:), and taking a new one through the camera's agent.
// Errors come back in the person's language.
import { api, ApiError, fresh } from "./api.js";
import { session } from "./session.js";
import { blobToDataUrl } from "./files.js";

async function image(url) {
  await fresh(url);
  const res = await fetch(url, { headers: { Authorization: `Bearer ${session.token}` } });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new ApiError(res.status, body.code, body.detail);
  }
  return blobToDataUrl(await res.blob());
}

export async function cameraDetail(id) {
  const camera = { id, status: null, image: "", error: "", busy: false };
  try {
    camera.status = await api(`/v1/cameras/${encodeURIComponent(id)}`);
    if (camera.status.snapshot) camera.image = await image(camera.status.snapshot.url);
  } catch (err) {
    camera.error = err.message;
  }
  return camera;
}

export async function takeSnapshot(camera) {
  try {
    await api(`/v1/cameras/${encodeURIComponent(camera.id)}/snapshot`, { method: "POST" });
  } catch (err) {
    return { ...camera, busy: false, error: err.message };
  }
  return cameraDetail(camera.id);
}
