// An event's photos (issue 18, the dispatcher's 处置前/处置后): which files show the case as
// reported and which show it handled, read from the transitions each file was attached to
// (cityevents: a step's attachment_ids link uploaded files to its transition). Files are fetched
// with the person's token (a plain <img src> is refused 401) and kept per page, so a photo
// shown both beside its step and in the before/after panel is fetched once.
import { MAX_BYTES, dataUrl, openFile, typeOf } from "./files.js";

// the steps before the case reaches a department: their files (and the reporter's, which the
// phone app uploads right after the report, unattached) show the problem
const BEFORE = ["report", "verify", "register"];
// a department's disposal feedback, the lead's or a co-handler's: their files show the result
const AFTER = ["feedback", "cohandler_feedback"];
export const PHOTO_TYPES = ["image/png", "image/jpeg", "application/pdf"];
export const PHOTO_ACCEPT = PHOTO_TYPES.join(",");

function actionOf(event, transitionId) {
  return (event.transitions || []).find((tr) => tr.id === transitionId)?.action;
}

// the first step taken after registration: unattached files uploaded later are not the report's
function dispatchedAt(event) {
  const tr = (event.transitions || []).find((x) => !BEFORE.includes(x.action));
  return tr ? new Date(tr.at).getTime() : Infinity;
}

export function beforeAfter(event) {
  const files = event.attachments || [];
  const cut = dispatchedAt(event);
  const before = files.filter((a) => (a.transition_id === null
    ? new Date(a.uploaded_at).getTime() <= cut : BEFORE.includes(actionOf(event, a.transition_id))));
  const after = files.filter((a) => a.transition_id !== null
    && AFTER.includes(actionOf(event, a.transition_id)));
  return { before, after };
}

export function filesOf(event, transition) {
  const ids = new Set(transition.attachment_ids || []);
  return (event.attachments || []).filter((a) => ids.has(a.id));
}

export const isImage = (a) => ["image/png", "image/jpeg"].includes(a.content_type);
export const attachmentPath = (eventId, a) => `/v1/events/${eventId}/attachments/${a.id}`;

const cache = new Map();
export function imageOf(eventId, a) {
  const path = attachmentPath(eventId, a);
  if (!cache.has(path)) cache.set(path, dataUrl(path).catch((err) => { cache.delete(path); throw err; }));
  return cache.get(path);
}

export const openAttachment = (eventId, a) => openFile(attachmentPath(eventId, a), a.content_type);

// null when the photo may be sent, else {key, params} of the words saying why not (the API
// checks again: datafoundation/catalogue/objects.py)
export function photoRefusal(file, maxBytes = MAX_BYTES) {
  if (!file.size) return { key: "photos.empty", params: { name: file.name } };
  if (file.size > maxBytes) {
    return { key: "photos.tooBig", params: { name: file.name, mb: (file.size / 1048576).toFixed(1),
                                             max: Math.round(maxBytes / 1048576) } };
  }
  if (!PHOTO_TYPES.includes(typeOf(file))) return { key: "photos.badType", params: { name: file.name } };
  return null;
}
