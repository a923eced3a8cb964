// MQTT.js devices for the MQTT driver's interoperability tests
// (tests/interop/test_mqtt_mqttjs.py): telemetry in the JSON shapes the driver accepts,
// published through a real Mosquitto by another client stack than the agent's paho.
//
// usage: node mqtt_device.mjs CONFIG.json
//   {"url", "interval_ms", "devices": [{"base", "protocolVersion": 5 or 4 (3.1.1),
//    "ts_unit": "ms" or "s"}]}
// Each device publishes every interval_ms, QoS 1 and retained, to <base>/state:
//   {"env": {"temp_x10": 200 + n, "humidity": 55.25}, "power": "on"/"off", "alarm": 0/1,
//    "label": ..., "cfg": {"sp": ...}, "energy_wh": 18446744073709551000 + n (a JSON integer
//    above 2^53, written as text: JSON.stringify would round it), "sent_at": its clock}
// and, QoS 0, {"front": true} to <base>/doors. A JSON object on <base>/set is merged into the
// state (`sp` into cfg.sp) and the state published at once: the device's answer to a command.
// MQTT.js reconnects by itself (every 200 ms) when the broker goes away.
import fs from "node:fs";
import process from "node:process";
import mqtt from "mqtt";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const version = JSON.parse(fs.readFileSync(
    new URL("./node_modules/mqtt/package.json", import.meta.url), "utf8")).version;

function stateText(device) {
    const n = device.n;
    const now = Date.now();
    const body = {
        env: { temp_x10: 200 + (n % 100), humidity: 55.25 }, power: n % 2 ? "off" : "on",
        alarm: n % 2, label: device.label, cfg: { sp: device.sp },
        sent_at: device.ts_unit === "s" ? now / 1000 : now,
    };
    // the big integer goes in as JSON text, exactly
    return JSON.stringify(body).replace(/}$/, `,"energy_wh":${18446744073709551000n + BigInt(n)}}`);
}

function startDevice(device) {
    Object.assign(device, { n: 0, label: "泵站 1", sp: 40 });
    const client = mqtt.connect(config.url, {
        clientId: `mqttjs-${device.base.replaceAll("/", "-")}`,
        protocolVersion: device.protocolVersion, reconnectPeriod: 200, connectTimeout: 2000,
    });
    const publish = () => {
        client.publish(`${device.base}/state`, stateText(device), { qos: 1, retain: true });
        client.publish(`${device.base}/doors`, JSON.stringify({ front: true }), { qos: 0 });
    };
    client.on("connect", () => {
        console.log(`connected ${device.base} mqtt.js ${version} v${device.protocolVersion}`);
        client.subscribe(`${device.base}/set`, { qos: 1 });
    });
    client.on("message", (_topic, payload) => {
        let command;
        try {
            command = JSON.parse(payload.toString());
        } catch {
            console.log(`not json on ${device.base}/set`);
            return;
        }
        if ("sp" in command) device.sp = command.sp;
        if ("label" in command) device.label = command.label;
        console.log(`command ${device.base} ${payload.toString()}`);
        publish();
    });
    client.on("error", (err) => console.log(`error ${device.base} ${err.message}`));
    setInterval(() => {
        if (!client.connected) return;
        device.n += 1;
        publish();
    }, config.interval_ms);
    return client;
}

const clients = config.devices.map(startDevice);
const stop = () => {
    for (const client of clients) client.end(true);
    process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
