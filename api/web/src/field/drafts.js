// Drafts kept on the phone (localStorage) until the API has taken them: a report, a feedback
// or an on-site check survives a lost connection, a closed tab or a flat battery. Each draft
// carries an idempotency key for the report and the ids of the photos already uploaded, so a
// retry sends only what the API has not confirmed yet.
const PREFIX = "cityops.field.draft.";

export function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes); // randomUUID() exists only in secure contexts
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function loadDraft(name) {
  try {
    return JSON.parse(localStorage.getItem(PREFIX + name) || "null");
  } catch {
    return null;
  }
}

// false when the phone's storage refused it (photos are large): the draft then lives only
// as long as the page, and the view says so
export function saveDraft(name, draft) {
  try {
    localStorage.setItem(PREFIX + name, JSON.stringify(draft));
    return true;
  } catch {
    return false;
  }
}

export function dropDraft(name) {
  localStorage.removeItem(PREFIX + name);
}

// a failure worth retrying: no answer at all (offline, dropped), or the server's own trouble
export function retryable(err) {
  return err.status === 0 || err.status >= 500 || err.status === 408 || err.status === 429;
}
