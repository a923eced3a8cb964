// One submission at a time per form (a double tap sends one request), and what went wrong in
// the person's words: a lost connection keeps the draft and offers a retry; a refusal shows
// the API's {code, detail} as the console does (lib/api.js).
import { ref } from "vue";
import { api } from "../lib/api.js";
import { t } from "../i18n/index.js";
import { retryable } from "./drafts.js";
import { dataUrlToBlob } from "./photos.js";

export function useSubmission() {
  const busy = ref(false);
  const problem = ref(null); // { kind: "offline" | "refused", text }
  async function run(work) {
    if (busy.value) return false;
    busy.value = true;
    problem.value = null;
    try {
      await work();
      return true;
    } catch (err) {
      problem.value = retryable(err) ? { kind: "offline", text: t("field.offline") }
        : { kind: "refused", text: err.message };
      return false;
    } finally {
      busy.value = false;
    }
  }
  return { busy, problem, run };
}

// uploads the photos the API has not confirmed yet; `save` keeps each new id in the draft
export async function uploadPhotos(eventId, photos, save) {
  for (const photo of photos) {
    if (photo.id) continue;
    const form = new FormData();
    form.append("file", dataUrlToBlob(photo.dataUrl), photo.name);
    photo.id = (await api(`/v1/events/${eventId}/attachments`, { method: "POST", form })).id;
    save();
  }
  return photos.map((p) => p.id);
}
