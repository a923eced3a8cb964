// The page's live stream (/v1/live): opened when a view mounts, closed when it leaves; its
// state drives the connection light in the top bar.
import { onBeforeUnmount, onMounted, ref, watch } from "vue";
import { subscribe } from "./sse.js";

export const liveState = ref("idle");

// params: a function returning the query ({device: [...], alarms: true}); the stream is
// reopened when what it returns changes (e.g. the device list arrived).
export function useLive(params, onEvent) {
  let sub = null;
  let stopWatch = null;
  let stopState = null;
  function close() {
    stopState?.();
    sub?.close();
    sub = null;
  }
  function open(p) {
    close();
    if (!p) { liveState.value = "idle"; return; }
    sub = subscribe("/v1/live", p, onEvent);
    stopState = watch(sub.state, (s) => { liveState.value = s; }, { immediate: true });
  }
  onMounted(() => {
    stopWatch = watch(() => JSON.stringify(params()), () => open(params()), { immediate: true });
  });
  onBeforeUnmount(() => {
    stopWatch?.();
    close();
    liveState.value = "idle";
  });
}
