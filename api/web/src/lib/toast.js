// Short confirmations and refusals at the corner of the screen.
import { reactive } from "vue";

export const toasts = reactive([]);
let next = 1;

export function toast(text, kind = "ok", ms = 5000) {
  const id = next++;
  toasts.push({ id, text, kind });
  setTimeout(() => {
    const i = toasts.findIndex((m) => m.id === id);
    if (i >= 0) toasts.splice(i, 1);
  }, ms);
}
