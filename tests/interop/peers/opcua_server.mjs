// A node-opcua server for the OPC-UA driver's interoperability tests
// (tests/interop/test_opcua_node_opcua.py): another vendor's stack than the asyncua the agent
// and our simulator use.
//
// usage: node opcua_server.mjs CONFIG.json
//   {"port", "pki": trust folders (our client certificate placed in pki/trusted/certs by the
//    test), "certificate", "privateKey": the server's own pair (PEM, made by the test),
//    "username", "password"}
// Endpoints: None, Basic256Sha256 Sign and SignAndEncrypt; user token only (no anonymous).
// Variables of each built-in type under Interop (namespace urn:cityops:interop), an Int32
// array, a read-only Double, and a method SetPreset(preset Int32) -> (ok Boolean, message
// String) that sets Interop.Preset and refuses a negative preset with ok=false.
import { webcrypto } from "node:crypto";
import fs from "node:fs";
import process from "node:process";

// Debian 12's node 18 has Web Crypto only under node:crypto, where node-opcua does not look
globalThis.crypto ??= webcrypto;
const {
    DataType, MessageSecurityMode, OPCUACertificateManager, OPCUAServer, SecurityPolicy,
    StatusCodes, Variant, VariantArrayType,
} = await import("node-opcua");

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const NAMESPACE = "urn:cityops:interop";

const VARIABLES = [
    ["Bool", DataType.Boolean, true], ["Int16", DataType.Int16, -1234],
    ["UInt16", DataType.UInt16, 60000], ["Int32", DataType.Int32, -123456789],
    // 64-bit values as node-opcua takes them: [high, low] 32-bit halves
    ["UInt32", DataType.UInt32, 3000000000], ["Int64", DataType.Int64, [0xFFFFFEFF, 0xFFFFFFFB]],
    ["UInt64", DataType.UInt64, [0x40000, 3]], ["Float", DataType.Float, 24.8],
    ["Double", DataType.Double, -0.001], ["String", DataType.String, "泵站 WALL-1"],
    ["Preset", DataType.Int32, 0],
];

function addVariables(namespace, folder) {
    for (const [name, dataType, value] of VARIABLES) {
        namespace.addVariable({
            componentOf: folder, browseName: name, nodeId: `s=Interop.${name}`, dataType,
            minimumSamplingInterval: 50, accessLevel: "CurrentRead | CurrentWrite",
            userAccessLevel: "CurrentRead | CurrentWrite",
            value: new Variant({ dataType, arrayType: VariantArrayType.Scalar, value }),
        });
    }
    namespace.addVariable({
        componentOf: folder, browseName: "Int32Array", nodeId: "s=Interop.Int32Array",
        dataType: DataType.Int32, valueRank: 1, arrayDimensions: [3],
        accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite",
        value: new Variant({ dataType: DataType.Int32, arrayType: VariantArrayType.Array,
                             value: new Int32Array([1, 2, 3]) }),
    });
    namespace.addVariable({
        componentOf: folder, browseName: "ReadOnly", nodeId: "s=Interop.ReadOnly",
        dataType: DataType.Double, accessLevel: "CurrentRead", userAccessLevel: "CurrentRead",
        value: new Variant({ dataType: DataType.Double, value: 42.5 }),
    });
    // a value that moves, for the subscription and restart tests
    let tick = 0;
    const counter = namespace.addVariable({
        componentOf: folder, browseName: "Counter", nodeId: "s=Interop.Counter",
        dataType: DataType.UInt32, minimumSamplingInterval: 50,
        value: new Variant({ dataType: DataType.UInt32, value: 0 }),
    });
    setInterval(() => {
        tick += 1;
        counter.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: tick }));
    }, 100);
}

function addMethod(namespace, folder, addressSpace) {
    const method = namespace.addMethod(folder, {
        browseName: "SetPreset", nodeId: "s=Interop.SetPreset",
        inputArguments: [{ name: "preset", dataType: DataType.Int32 }],
        outputArguments: [{ name: "ok", dataType: DataType.Boolean },
                          { name: "message", dataType: DataType.String }],
    });
    method.bindMethod((inputs, _context, callback) => {
        const preset = inputs[0].value;
        const ok = preset >= 0;
        if (ok) {
            addressSpace.findNode(`ns=${namespace.index};s=Interop.Preset`)
                .setValueFromSource(new Variant({ dataType: DataType.Int32, value: preset }));
        }
        callback(null, {
            statusCode: StatusCodes.Good,
            outputArguments: [
                { dataType: DataType.Boolean, value: ok },
                { dataType: DataType.String, value: ok ? `preset ${preset} set`
                                                       : `no preset ${preset}` },
            ],
        });
    });
}

async function main() {
    const certificateManager = new OPCUACertificateManager({
        rootFolder: config.pki, automaticallyAcceptUnknownCertificate: false,
    });
    const server = new OPCUAServer({
        port: config.port, host: "127.0.0.1", hostname: "127.0.0.1",
        resourcePath: "/interop",
        serverInfo: { applicationUri: "urn:cityops:interop:node-opcua",
                      productUri: "urn:cityops:interop", applicationName: { text: "interop" } },
        certificateFile: config.certificate, privateKeyFile: config.privateKey,
        serverCertificateManager: certificateManager,
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign,
                        MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: false,
        userManager: {
            isValidUser: (user, password) => user === config.username
                && password === config.password,
        },
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace;
    const namespace = addressSpace.registerNamespace(NAMESPACE);
    const folder = namespace.addObject({
        organizedBy: addressSpace.rootFolder.objects, browseName: "Interop",
        nodeId: "s=Interop",
    });
    addVariables(namespace, folder);
    addMethod(namespace, folder, addressSpace);
    await server.start();
    const version = JSON.parse(fs.readFileSync(
        new URL("./node_modules/node-opcua/package.json", import.meta.url), "utf8")).version;
    console.log(`ready node-opcua ${version} ${server.getEndpointUrl()}`);
    const stop = async () => { await server.shutdown(0); process.exit(0); };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((err) => { console.error(err); process.exit(1); });
