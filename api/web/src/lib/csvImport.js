// The CSV device import, checked in the browser before a byte is sent: the size, that it is
// text in an encoding the API reads (cityops/csv_files.py: UTF-8 with or without a BOM, GBK,
// UTF-16 with a BOM), and its header (DeviceIn's fields, the address one column per field).
// After a refusal, the rows the API accepted can be sent again without the refused ones, so
// nothing the technician typed is lost; its reasons are put in the reader's language.
import { t, has } from "../i18n/index.js";

export const CSV_MAX_BYTES = 4 * 1024 * 1024; // 10,000 rows (the API's limit) fit in ~2 MB
export const CSV_MAX_ROWS = 10000;
const FIELDS = ["id", "title", "gateway", "profile", "site", "department", "latitude", "longitude",
                "poll_interval_s", "timeout_s"];
const REQUIRED = ["id", "gateway", "profile"];

export class CsvRefused extends Error {}

function refuse(key, params) {
  return new CsvRefused(t(key, params));
}

// The text and the name of the encoding read; anything else (a spreadsheet saved as .xlsx, a
// picture) is refused here, not after an upload.
export function decodeCsv(buffer) {
  if (buffer.byteLength > CSV_MAX_BYTES) {
    throw refuse("onboard.csv.tooBig", { mb: (buffer.byteLength / 1048576).toFixed(1), max: CSV_MAX_BYTES / 1048576 });
  }
  const bytes = new Uint8Array(buffer);
  const tries = bytes[0] === 0xff && bytes[1] === 0xfe ? [["utf-16le", "UTF-16"]]
    : bytes[0] === 0xfe && bytes[1] === 0xff ? [["utf-16be", "UTF-16"]]
    : [["utf-8", "UTF-8"], ["gb18030", "GBK"]];
  for (const [name, shown] of tries) {
    let text;
    try { text = new TextDecoder(name, { fatal: true }).decode(bytes); } catch { continue; }
    // control characters other than tab and line ends: a binary file the decoder let through
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) break;
    return { text, encoding: shown };
  }
  throw refuse("onboard.csv.notText");
}

// Records as a spreadsheet numbers them (a quoted cell may hold line breaks): [text, ...]
export function records(text) {
  const out = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === "\n" || c === "\r")) {
      out.push(text.slice(start, i));
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      start = i + 1;
    }
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

function cells(record) {
  const out = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < record.length; i += 1) {
    const c = record[i];
    if (quoted) {
      if (c === '"' && record[i + 1] === '"') { cell += '"'; i += 1; } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { out.push(cell); cell = ""; } else cell += c;
  }
  out.push(cell);
  return out.map((x) => x.trim());
}

// The file's rows once its header is known to be one the API takes.
export function checkCsv(text) {
  const rows = records(text);
  const header = cells((rows[0] || "").replace(/^\ufeff/, ""));
  const seen = new Set();
  for (const column of header) {
    if (!column) continue;
    if (seen.has(column)) throw refuse("onboard.csv.twice", { column });
    seen.add(column);
    if (!FIELDS.includes(column) && !/^address\.[A-Za-z_]\w*$/.test(column)) {
      throw refuse("onboard.csv.unknownColumn", { column, known: FIELDS.join(", ") });
    }
  }
  const lacking = REQUIRED.filter((c) => !seen.has(c));
  if (!header.some((c) => c.startsWith("address."))) lacking.push("address.host");
  if (lacking.length) throw refuse("onboard.csv.lacks", { columns: lacking.join(", ") });
  const data = rows.slice(1).filter((r) => r.trim() !== "");
  if (!data.length) throw refuse("onboard.csv.empty");
  if (data.length > CSV_MAX_ROWS) throw refuse("onboard.csv.tooMany", { max: CSV_MAX_ROWS });
  return { header, rows, count: data.length };
}

// The file again without the rows the API refused (numbered as it numbers them: header 1).
export function withoutRows(text, refused) {
  const skip = new Set(refused.map((r) => r.row));
  const rows = records(text);
  const kept = rows.filter((r, i) => i === 0 || (!skip.has(i + 1) && r.trim() !== ""));
  return { text: `${kept.join("\r\n")}\r\n`, count: kept.length - 1 };
}

const GISTS = [
  [/is already registered/, "registered"], [/appears twice/, "twice"],
  [/is not registered/, "unknown"], [/is revoked/, "revoked"], [/Field required/, "required"],
  [/Extra inputs are not permitted/, "extra"], [/should match pattern/, "pattern"],
  [/(less|greater) than/, "range"], [/valid (number|integer|boolean)|unable to parse/i, "number"],
  [/speaks .* the address is for/, "protocol"],
];

// "gateway 'gw-x' is not registered" -> 网关 未登记（gateway 'gw-x' is not registered）
export function reasonText(reason) {
  const named = /^([A-Za-z_][\w.]*): /.exec(reason);
  const subject = /^(gateway|profile|site|department|device) '/.exec(reason);
  const field = named ? named[1] : subject ? subject[1] : "";
  const root = field.split(".")[0];
  const where = !field ? "" : has(`onboard.field.${root}`)
    ? t(`onboard.field.${root}`) + (field.includes(".") ? field.slice(root.length) : "") : field;
  const gist = (GISTS.find(([re]) => re.test(reason)) || [null, "other"])[1];
  return `${where ? `${where} ` : ""}${t(`onboard.why.${gist}`)}（${reason}）`;
}
