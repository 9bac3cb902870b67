#!/usr/bin/env node
/* JS6: SeparableConv2D channels_first adds its bias in channels_last layout.

Cause: the layer adds the bias after computing in NHWC, before transposing to NCHW
Framework: tfjs; measured on @tensorflow/tfjs >=4.22 (backend cpu).
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only @tensorflow/tfjs (npm install, or NODE_PATH pointing at a node_modules that has it).
Generated from the conv-conformance findings catalogue (entry JS6); regenerate, do not edit.
*/
"use strict";
const tf = require("@tensorflow/tfjs");

const BACKEND = "cpu";
let RAISES = [];  // substrings of the messages the divergence raises; any other error means this script broke
let EXPECT_RAISE = false;  // true: Keras raises here, and TF.js returning a result is the divergence

const x = tf.ones([1, 1, 3, 3]);                                             // channels_first: 1 channel, 3x3
const layer = tf.layers.separableConv2d({filters: 2, kernelSize: 1, dataFormat: "channelsFirst",
                                         depthwiseInitializer: "ones", pointwiseInitializer: "ones"});
layer.build([1, 1, 3, 3]);
layer.setWeights([tf.ones([1, 1, 1, 1]), tf.ones([1, 1, 1, 2]), tf.tensor1d([10, 20])]);
const expected = {shape: [1, 2, 3, 3], data: [...new Array(9).fill(11), ...new Array(9).fill(21)]};  // 1 + bias per filter
const ALLOWED = 1e-5;
RAISES = ["could not be broadcast"];

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
