// Alarm texts in the reader's language. The rules engine and the cloud monitor write their
// messages from fixed English templates (ingestion/rules/evaluate.py, engine.py,
// cloud_control/monitor.py); each template's figures are taken back out here and put into
// the dictionary's sentence. A text that matches no template (a newer template, an operator's
// own words) is shown as the API wrote it.
import { locale, t, label } from "../i18n/index.js";

const N = "([-+0-9.eE]+)";
const RULE_TEMPLATES = [
  [new RegExp(`^value ${N} (above|below) ${N} for ${N} s$`), "alarmText.held",
    (m) => ({ v: m[1], side: t(`alarmText.${m[2]}`), limit: m[3], s: m[4] })],
  [new RegExp(`^value ${N} back from (above|below) ${N}$`), "alarmText.back",
    (m) => ({ v: m[1], side: t(`alarmText.${m[2]}`), limit: m[3] })],
  [new RegExp(`^changing ${N}/s \\(limit ${N}/s\\)$`), "alarmText.rate",
    (m) => ({ rate: m[1], limit: m[2] })],
  [new RegExp(`^value ${N} is ${N} robust deviations from its (\\w+) expectation$`),
    "alarmText.anomaly", (m) => ({ v: m[1], z: m[2], method: m[3] })],
  [new RegExp(`^no reading for ${N} s \\(limit ${N} s\\)$`), "alarmText.silent",
    (m) => ({ s: m[1], limit: m[2] })],
  [/^the device reports again$/, "alarmText.reportsAgain", () => ({})],
];

function ruleText(text) {
  for (const [re, key, params] of RULE_TEMPLATES) {
    const m = text.match(re);
    if (m) return t(key, params(m));
  }
  return null;
}

// A device alarm: "<rule title>: <template>"; the title is the operator's own words.
export function alarmText(message) {
  if (!message || locale.value === "en") return message || "";
  const at = message.indexOf(": ");
  if (at < 0) return ruleText(message) ?? message;
  const rest = ruleText(message.slice(at + 2));
  return rest === null ? message : `${message.slice(0, at)}：${rest}`;
}

const CLOUD_TEMPLATES = {
  quota_near_full: [/^project (\S+) uses ([-0-9.e+]+) of ([-0-9.e+]+) (\S+)$/,
    (m) => ({ project: m[1], used: m[2], limit: m[3], metric: label("metric", m[4]) })],
  server_error: [/^server (\S+) of project (\S+) is in ERROR/,
    (m) => ({ server: m[1], project: m[2] })],
  service_down: [/^cloud service (\S+): (.*)$/, (m) => ({ service: m[1], state: m[2] })],
};

// A cloud alarm, by its kind: the sentence of the kind with the figures of the message, or
// the kind's name with the subject when the message has another form.
export function cloudAlarmText(alarm) {
  if (locale.value === "en") return alarm.message;
  const known = CLOUD_TEMPLATES[alarm.kind];
  const m = known && alarm.message?.match(known[0]);
  if (m) return t(`cloudAlarm.${alarm.kind}`, known[1](m));
  return `${label("cloudAlarmKind", alarm.kind)}：${alarm.subject ?? ""} ${alarm.message ?? ""}`.trim();
}
