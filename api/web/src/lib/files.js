// Files of a catalogue resource: checked in the browser before they are sent (the API checks
// again: datafoundation/catalogue/objects.py), and shown with the bearer token a plain link
// cannot carry: images inline as data: URLs (the console's policy admits no blob: image), a
// PDF in the browser's own viewer (a blob: tab), an office file as the PDF the API made of it
// (.../preview, once converted), everything else downloaded.
import { session } from "./session.js";
import { download } from "./fieldErrors.js";

export const MAX_BYTES = 20 * 1024 * 1024; // CITYOPS_UPLOAD_MAX_BYTES' default
export const OFFICE = ["application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                       "application/msword", "application/vnd.ms-excel"];
export const TYPES = ["image/png", "image/jpeg", "image/tiff", "application/pdf", "text/plain",
                      "text/csv", ...OFFICE];
export const ACCEPT = [...TYPES, ".docx", ".xlsx", ".pptx", ".doc", ".xls", ".csv", ".txt"].join(",");
const BY_SUFFIX = { docx: OFFICE[0], xlsx: OFFICE[1], pptx: OFFICE[2], doc: OFFICE[3], xls: OFFICE[4],
                    csv: "text/csv", txt: "text/plain",
                    pdf: "application/pdf", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg",
                    tif: "image/tiff", tiff: "image/tiff" };

// the type the browser reports, or the one its name says (browsers leave .csv and office
// files untyped on some systems)
export function typeOf(file) {
  if (file.type) return file.type;
  return BY_SUFFIX[(file.name.split(".").pop() || "").toLowerCase()] || "";
}

// null when the file may be sent, else {key, params} of the words saying why not
export function refusal(file, maxBytes = MAX_BYTES) {
  if (!file.size) return { key: "desk.files.empty", params: { name: file.name } };
  if (file.size > maxBytes) {
    return { key: "desk.files.tooBig", params: { name: file.name, mb: (file.size / 1048576).toFixed(1),
                                                 max: Math.round(maxBytes / 1048576) } };
  }
  if (!TYPES.includes(typeOf(file))) return { key: "desk.files.badType", params: { name: file.name } };
  return null;
}

export const previewKind = (type) => (type.startsWith("image/") && type !== "image/tiff" ? "image"
  : type === "application/pdf" ? "pdf" : OFFICE.includes(type) ? "office" : "download");

async function fetchBlob(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` } });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.blob();
}

export function blobToDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

export const dataUrl = async (path) => blobToDataUrl(await fetchBlob(path));

// the tab is opened at the click (a popup blocker allows that), then given the file: a plain
// link would reach the API without the person's token and be refused
export async function openFile(path, type = null) {
  const tab = window.open("", "_blank");
  try {
    const blob = await fetchBlob(path);
    const url = URL.createObjectURL(type ? new Blob([blob], { type }) : blob);
    if (tab) tab.location.href = url; else window.open(url, "_blank");
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    if (tab) tab.close();
    throw err;
  }
}

export const openPdf = (path) => openFile(path, "application/pdf");

export const saveFile = (path, name) => download(path, session.token, name);
