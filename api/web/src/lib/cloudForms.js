// The ops engineer's cloud forms: one per job kind the API queues (api/routes/cloud.py), with
// the checks of the job's parameters model (cloud_control/provider.py, handlers.py) made in
// the browser first, so a wrong CIDR or name never becomes a request.

const ID = /^[a-z0-9][a-z0-9_.-]{0,62}$/; // cityops/wire.py ID_PATTERN
const project = { name: "project", kind: "project", required: true };
const name = { name: "name", kind: "id", required: true };
const quota = (q) => ({ name: `quotas.${q}`, kind: "count" });

export const JOB_FORMS = {
  project: { path: "/v1/cloud/projects", fields: [
    name, { name: "department", kind: "department" }, { name: "description", kind: "text" },
    quota("cores"), quota("ram_mb"), quota("instances"), quota("volumes"), quota("gigabytes"),
    quota("floating_ips")] },
  network: { path: "/v1/cloud/networks", fields: [
    project, name, { name: "cidr", kind: "cidr", required: true, initial: "10.20.0.0/24" },
    { name: "external_access", kind: "bool", initial: true }] },
  server: { path: "/v1/cloud/servers", fields: [
    project, name, { name: "flavor", kind: "flavor", required: true },
    { name: "image", kind: "image", required: true },
    { name: "network", kind: "network", required: true }] },
  volume: { path: "/v1/cloud/volumes", fields: [
    project, name, { name: "size_gb", kind: "size", required: true, initial: "10" }] },
  floating_ip: { path: "/v1/cloud/floating-ips", fields: [
    project, { name: "name", kind: "server", required: true }] },
};

// [dictionary key, params] of what is wrong with a subnet, or null: an IPv4 network address
// with its prefix, no host bits (the cloud would store the network and a retry would differ),
// room for a gateway and servers (at most /30)
export function cidrProblem(text) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (!m) return ["cloud.form.cidrForm"];
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255)) return ["cloud.form.cidrOctet"];
  if (prefix > 32) return ["cloud.form.cidrPrefix"];
  if (prefix > 30) return ["cloud.form.cidrSmall"];
  const ip = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  const network = ip - (ip % size);
  if (network !== ip) {
    const shown = [24, 16, 8, 0].map((s) => Math.floor(network / 2 ** s) % 256).join(".");
    return ["cloud.form.cidrHost", { network: `${shown}/${prefix}` }];
  }
  return null;
}

const whole = (v, lo, hi) => /^\d+$/.test(v) && Number(v) >= lo && Number(v) <= hi;

// {field name: [dictionary key, params]} for the values of one form
export function checkJob(kind, values, lists) {
  const problems = {};
  for (const f of JOB_FORMS[kind].fields) {
    const v = typeof values[f.name] === "string" ? values[f.name].trim() : values[f.name];
    if (v === "" || v === undefined || v === null) {
      if (f.required) problems[f.name] = ["cloud.form.required"];
      continue;
    }
    if (["id", "project", "server"].includes(f.kind) && !ID.test(v)) problems[f.name] = ["cloud.form.badName"];
    if (f.kind === "cidr") { const p = cidrProblem(v); if (p) problems[f.name] = p; }
    if (f.kind === "count" && !whole(v, 0, 10 ** 9)) problems[f.name] = ["cloud.form.badCount"];
    if (f.kind === "size" && !whole(v, 1, 16384)) problems[f.name] = ["cloud.form.badSize"];
    if (["flavor", "image"].includes(f.kind) && lists[f.kind]?.length
        && !lists[f.kind].some((x) => x.name === v)) problems[f.name] = ["cloud.form.notListed"];
  }
  return problems;
}

// the job's parameters as the API's model wants them
export function jobBody(kind, values) {
  const body = {};
  for (const f of JOB_FORMS[kind].fields) {
    let v = values[f.name];
    if (typeof v === "string") v = v.trim();
    if (v === "" || v === undefined || v === null) continue;
    if (["count", "size"].includes(f.kind)) v = Number(v);
    const [head, tail] = f.name.split(".");
    if (tail) (body[head] ||= {})[tail] = v;
    else body[head] = v;
  }
  return body;
}

export function initialValues(kind) {
  return Object.fromEntries(JOB_FORMS[kind].fields.map((f) => [f.name, f.initial ?? ""]));
}

// Ansible output may carry what a task was given; tasks with secrets carry no_log, and this
// hides whatever still looks like one (password=..., "token": "...") before it is shown.
export function masked(text) {
  return String(text ?? "").replace(
    /((?:password|passwd|secret|token|api_key|private_key)["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, "$1***");
}
