// node-opcua server for edgekit's interoperability test (tests/opcua/test_opcua_interop.py).
// Usage: node server.js PORT PKI_DIR   → prints "READY <endpoint>" once listening; writes
// PKI_DIR/server_cert.der (the certificate clients must trust). Same layout as the simulator for
// Machine01 (subset): SpeedRpm Float, EnergyWh Int64, Name String, Running Boolean, LoadPct (an
// AnalogItem with EURange 0..100, writable), and
// Vibration/{Ch0,Ch1 Float arrays, SampleRateHz, BlockSeq, SpeedHz}; user operator / s3cret.
"use strict";
const fs = require("fs");
const path = require("path");
const {
  OPCUAServer, OPCUACertificateManager, Variant, DataType, VariantArrayType,
  SecurityPolicy, MessageSecurityMode, standardUnits,
} = require("node-opcua");

const port = parseInt(process.argv[2], 10);
const pkiDir = process.argv[3];
const BLOCK = 1024;

(async () => {
  fs.mkdirSync(pkiDir, { recursive: true });
  const serverCertificateManager = new OPCUACertificateManager({
    automaticallyAcceptUnknownCertificate: true,
    rootFolder: path.join(pkiDir, "pki"),
  });
  await serverCertificateManager.initialize();
  const server = new OPCUAServer({
    port,
    hostname: "127.0.0.1",
    resourcePath: "/edgekit/sim",
    serverCertificateManager,
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256,
      SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss],
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: true,
    userManager: { isValidUser: (user, password) => user === "operator" && password === "s3cret" },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.registerNamespace("urn:edgekit:sim");
  const plant = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Plant", nodeId: "s=Plant" });
  const m = ns.addObject({ organizedBy: plant, browseName: "Machine01", nodeId: "s=Machine01" });
  let speed = 1480.0;
  let seq = 0;
  ns.addVariable({ componentOf: m, browseName: "SpeedRpm", nodeId: "s=Machine01.SpeedRpm", dataType: "Float",
    minimumSamplingInterval: 50,
    value: { get: () => new Variant({ dataType: DataType.Float, value: speed }) } });
  // Int64 as [high, low] words; a scalar needs arrayType Scalar (see docs/pitfalls)
  ns.addVariable({ componentOf: m, browseName: "EnergyWh", nodeId: "s=Machine01.EnergyWh", dataType: "Int64",
    value: new Variant({ dataType: DataType.Int64, arrayType: VariantArrayType.Scalar, value: [256, 5] }) });
  ns.addVariable({ componentOf: m, browseName: "Name", nodeId: "s=Machine01.Name", dataType: "String",
    value: new Variant({ dataType: DataType.String, value: "MACHINE-01" }) });
  ns.addVariable({ componentOf: m, browseName: "Running", nodeId: "s=Machine01.Running", dataType: "Boolean",
    value: new Variant({ dataType: DataType.Boolean, value: true }) });
  // AnalogItem with an EURange, for the percent deadband test (asyncua servers do not implement it)
  ns.addAnalogDataItem({
    componentOf: m, browseName: "LoadPct", nodeId: "s=Machine01.LoadPct", dataType: "Double",
    engineeringUnitsRange: { low: 0, high: 100 }, engineeringUnits: standardUnits.percent,
    accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite",
    minimumSamplingInterval: 0,
    value: new Variant({ dataType: DataType.Double, value: 50.0 }),
  });
  const vib = ns.addObject({ componentOf: m, browseName: "Vibration", nodeId: "s=Machine01.Vibration" });
  const chans = [0, 1].map((c) => ns.addVariable({
    componentOf: vib, browseName: `Ch${c}`, nodeId: `s=Machine01.Vibration.Ch${c}`, dataType: "Float",
    valueRank: 1, arrayDimensions: [BLOCK],
    value: new Variant({ dataType: DataType.Float, arrayType: VariantArrayType.Array, value: new Float32Array(BLOCK) }),
  }));
  ns.addVariable({ componentOf: vib, browseName: "SampleRateHz", nodeId: "s=Machine01.Vibration.SampleRateHz",
    dataType: "Double", value: new Variant({ dataType: DataType.Double, value: 25600.0 }) });
  ns.addVariable({ componentOf: vib, browseName: "SpeedHz", nodeId: "s=Machine01.Vibration.SpeedHz",
    dataType: "Double", value: new Variant({ dataType: DataType.Double, value: 1480.0 / 60 }) });
  const seqVar = ns.addVariable({ componentOf: vib, browseName: "BlockSeq", nodeId: "s=Machine01.Vibration.BlockSeq",
    dataType: "UInt32", value: new Variant({ dataType: DataType.UInt32, value: 0 }) });
  await server.start();
  fs.writeFileSync(path.join(pkiDir, "server_cert.der"), server.getCertificate());
  setInterval(() => {
    speed = 1480.0 + 5 * Math.sin(Date.now() / 1000);
    seq += 1;
    for (let c = 0; c < 2; c++) {
      const a = new Float32Array(BLOCK);
      for (let i = 0; i < BLOCK; i++) a[i] = Math.sin(2 * Math.PI * 100 * (c + 1) * i / 25600) + 0.001 * seq;
      chans[c].setValueFromSource(new Variant({ dataType: DataType.Float, arrayType: VariantArrayType.Array, value: a }));
    }
    seqVar.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: seq }));
  }, 200);
  console.log(`READY ${server.getEndpointUrl()}`);
})().catch((err) => { console.error(err); process.exit(1); });
