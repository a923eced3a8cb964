// The state of the controls on screen: each action's progress and outcome keyed by what was
// touched, the read-back value when the device confirms, the API's words when it refuses.
import { reactive } from "vue";
import { sendCommand } from "./commands.js";
import { can } from "./permissions.js";
import { t, label } from "../i18n/index.js";
import { toast } from "./toast.js";

export function useControls(onReadback) {
  const status = reactive({}); // key -> {state: pending|ok|bad, text}
  const asking = reactive({}); // key -> true while a confirmation is shown

  // `sender`: another route that ends in this command (a camera put on a wall window)
  async function send(device, body, what, sender = () => sendCommand(device, body)) {
    const key = `${device}/${body.point || body.method}`;
    if (!can("device.command")) {
      status[key] = { state: "bad", text: t("control.roleRefused") };
      return;
    }
    // one command per action: a second click (a double-click) while the first is on its way
    // is not a second command
    if (status[key]?.state === "pending") return;
    delete asking[key];
    status[key] = { state: "pending", text: t("control.sending") };
    try {
      const cmd = await sender();
      if (cmd.state === "succeeded") {
        const rb = cmd.readback === null || cmd.readback === undefined ? "" : String(cmd.readback);
        status[key] = { state: "ok", text: t("control.confirmed", { value: rb }), readback: cmd.readback };
        if (body.point && onReadback) onReadback(device, body.point, cmd.readback);
        toast(`${what}: ${t("control.confirmed", { value: rb })}`);
      } else {
        status[key] = { state: "bad",
                        text: `${label("cmdState", cmd.state)}${cmd.detail ? `: ${cmd.detail}` : ""}` };
        toast(`${what}: ${status[key].text}`, "bad");
      }
    } catch (err) {
      const why = err.status === 403 ? t("control.roleRefused")
        : err.status === 422 ? t("control.rangeRefused") : t("control.failed");
      status[key] = { state: "bad", text: `${why}: ${err.message}` };
      toast(`${what}: ${status[key].text}`, "bad", 8000);
    }
  }

  // the two-click path for switching power, doors and alarm zones
  function ask(device, body) {
    asking[`${device}/${body.point || body.method}`] = true;
  }
  function cancel(device, name) {
    delete asking[`${device}/${name}`];
  }
  return { status, asking, send, ask, cancel };
}
