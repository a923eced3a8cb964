// Makes /m installable: the manifest link and the service worker (api/web/public/m/), both
// served by the API from the same origin. Only the field pages ask for them, so the desk
// console stays a plain page. Service workers need a secure page (HTTPS or localhost).
export function installable() {
  if (!document.querySelector("link[rel=manifest]")) {
    const link = Object.assign(document.createElement("link"),
                               { rel: "manifest", href: "/m/manifest.webmanifest" });
    document.head.appendChild(link);
    const theme = Object.assign(document.createElement("meta"),
                                { name: "theme-color", content: "#0a1628" });
    document.head.appendChild(theme);
  }
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch(() => {});
  }
}
