// The phone's position (navigator.geolocation): browsers give it only to secure pages (HTTPS,
// or http://localhost) and only after the person allows it; the event's grid cell, community
// and town are then derived by the API from the point (migration 081).
export function currentPosition(timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    if (!("geolocation" in navigator)) { reject(Object.assign(new Error("unsupported"), { reason: "unsupported" })); return; }
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve({ latitude: Number(pos.coords.latitude.toFixed(6)),
                         longitude: Number(pos.coords.longitude.toFixed(6)),
                         accuracy: Math.round(pos.coords.accuracy) }),
      (err) => reject(Object.assign(new Error(err.message),
        { reason: err.code === 1 ? "denied" : err.code === 3 ? "timeout" : "unavailable" })),
      { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 30000 });
  });
}
