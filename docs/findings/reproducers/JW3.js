#!/usr/bin/env node
/* JW3: WebAssembly: Conv3DTranspose computes wrong values.

Cause: not reduced: the WASM Conv3DBackpropInputV2 kernel
Framework: tfjs; measured on @tensorflow/tfjs >=4.22 (backend wasm).
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm (npm install, or NODE_PATH pointing at a node_modules that has it).
Generated from the conv-conformance findings catalogue (entry JW3); regenerate, do not edit.
*/
"use strict";
const tf = require("@tensorflow/tfjs");

const BACKEND = "wasm";
let RAISES = [];  // substrings of the messages the divergence raises; any other error means this script broke
let EXPECT_RAISE = false;  // true: Keras raises here, and TF.js returning a result is the divergence

const [C, D, H, W, F, K] = [1, 3, 3, 5, 2, 2];                                // channels_first input (1, C, D, H, W)
const xs = Array.from({length: C * D * H * W}, (_, i) => ((i * 7) % 11) / 10 - 0.5);
const ws = Array.from({length: K * K * K * F * C}, (_, i) => ((i * 5) % 13) / 10 - 0.6);  // (kd, kh, kw, F, C)
const layer = tf.layers.conv3dTranspose({filters: F, kernelSize: K, dataFormat: "channelsFirst", useBias: false});
const x = tf.tensor5d(xs, [1, C, D, H, W]);
layer.apply(x);
layer.setWeights([tf.tensor5d(ws, [K, K, K, F, C])]);
const [OD, OH, OW] = [D + K - 1, H + K - 1, W + K - 1];
const data = new Array(F * OD * OH * OW).fill(0);                             // out[f, d+a, h+b, w+c] += x[ch, d, h, w] w[a, b, c, f, ch]
for (let f = 0; f < F; f++) for (let ch = 0; ch < C; ch++)
  for (let d = 0; d < D; d++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++)
    for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) for (let c = 0; c < K; c++)
      data[((f * OD + d + a) * OH + h + b) * OW + w + c] +=
        xs[((ch * D + d) * H + h) * W + w] * ws[(((a * K + b) * K + c) * F + f) * C + ch];
const expected = {shape: [1, F, OD, OH, OW], data};
const ALLOWED = 1e-5;

function actual() {
  return layer.apply(x);
}

const REPEAT = 1;

function show(values) {
  const shown = Array.from(values).slice(0, 20).map((v) => Number(v).toPrecision(7));
  return `[${shown.join(", ")}${values.length > 20 ? ", ..." : ""}]`;
}

async function main() {
  if (BACKEND === "wasm") {
    const path = require("path");
    const wasm = require("@tensorflow/tfjs-backend-wasm");
    wasm.setWasmPaths(path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm")), path.sep));
  }
  if (!(await tf.setBackend(BACKEND))) {
    console.log(`the reproducer itself failed: backend ${BACKEND} did not initialize`);
    return 2;
  }
  tf.enableProdMode();
  console.log("environment:", JSON.stringify({"@tensorflow/tfjs": tf.version.tfjs, backend: tf.getBackend(),
                                              node: process.version, platform: process.platform, arch: process.arch}));
  console.log("expected:", EXPECT_RAISE ? "an error (Keras rejects this configuration)"
                                        : `shape [${expected.shape}] ${show(expected.data)}`);
  let present = false;
  for (let call = 1; call <= REPEAT; call++) {
    let got;
    try {
      got = await actual();
    } catch (exc) {
      const message = String((exc && exc.message) || exc).split("\n")[0].slice(0, 300);
      console.log(`actual (call ${call}): raised ${(exc && exc.name) || "error"}: ${message}`);
      if (EXPECT_RAISE) continue;
      if (!RAISES.some((r) => message.includes(r))) {
        console.log(`the reproducer itself failed: the divergence raises ${RAISES.join(" or ") || "nothing"}`);
        return 2;
      }
      present = true;
      continue;
    }
    const shape = Array.from(got.shape), data = Array.from(got.dataSync());
    if (EXPECT_RAISE) {
      console.log(`actual (call ${call}): a result of shape [${shape}] ${show(data)}`);
      present = true;
      continue;
    }
    if (shape.join(",") !== expected.shape.join(",")) {
      console.log(`actual (call ${call}): shape [${shape}], expected shape [${expected.shape}]`);
      present = true;
      continue;
    }
    let error = 0;
    data.forEach((v, i) => { const e = Math.abs(v - expected.data[i]); error = Number.isNaN(e) ? Infinity : Math.max(error, e); });
    console.log(`actual (call ${call}): ${show(data)}`);
    console.log(`error (call ${call}): ${error.toPrecision(3)} (allowed ${ALLOWED.toPrecision(3)})`);
    present = present || !(error <= ALLOWED);
  }
  console.log(present ? "divergence present" : "divergence not reproduced: fixed, or not this environment");
  return present ? 1 : 0;
}

main().then((status) => process.exit(status),
            (exc) => { console.log(`the reproducer itself failed: ${(exc && exc.stack) || exc}`); process.exit(2); });
