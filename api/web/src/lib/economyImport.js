// The economy import's file check and its per-row reasons in the reader's language. The API
// (datafoundation/economy/parse.py) gives each refused row English sentences, not codes: the
// gist is recognised and said in the reader's words, the API's sentence kept beside it.
import { MAX_BYTES, OFFICE } from "./files.js";
import { has, t } from "../i18n/index.js";

const KINDS = { csv: ["text/csv", "application/vnd.ms-excel", "text/plain", ""], xlsx: [OFFICE[1], ""] };
export const ACCEPT = ".csv,.xlsx,text/csv," + OFFICE[1];

// null when the file may be sent, else the words saying why not
export function fileRefusal(file, maxBytes = MAX_BYTES) {
  const suffix = (file.name.split(".").pop() || "").toLowerCase();
  if (!KINDS[suffix] || !KINDS[suffix].includes(file.type)) return t("econ.badType", { name: file.name });
  if (!file.size) return t("econ.empty", { name: file.name });
  if (file.size > maxBytes) {
    return t("econ.tooBig", { name: file.name, mb: (file.size / 1048576).toFixed(1),
                              max: Math.round(maxBytes / 1048576) });
  }
  return null;
}

const GISTS = [
  [/ is empty$/, "empty"], [/not a valid 统一社会信用代码/, "uscc"], [/^size .*: use /, "size"],
  [/^month .*: use YYYY-MM/, "month"], [/must be a number >= 0/, "negative"],
  [/is not a number/, "number"], [/ repeats row /, "repeats"], [/differ from an earlier row/, "differs"],
];

// "revenue 'x' is not a number" -> 营业收入 不是数字（revenue 'x' is not a number）
export function reasonText(reason) {
  const field = /^([a-z_]+)\b/.exec(reason)?.[1] || "";
  const where = has(`econ.field.${field}`) ? `${t(`econ.field.${field}`)} ` : "";
  const gist = GISTS.find(([re]) => re.test(reason))?.[1];
  return gist ? `${where}${t(`econ.why.${gist}`)}（${reason}）` : reason;
}
