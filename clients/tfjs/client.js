// TensorFlow.js behind the conv-conformance exec protocol (docs/exec-protocol.md).
//
//     node client.js --backend cpu|wasm
//
// Each case builds the layer with TF.js's Keras layer API (tf.layers.conv2d, ...), sets the
// case's weights and calls it; vjp uses tf.grad for the input and tf.variableGrads for the
// weights. Keras names map to TF.js's camelCase; a valid Keras configuration TF.js has no way to
// express (groups, output_padding, a layer or activation it lacks) is declined, and everything
// else goes to TF.js as is, so its own validation decides what it rejects. Logs go to stderr.
"use strict";

const path = require("path");
const tf = require("@tensorflow/tfjs");

const BACKEND = process.argv[process.argv.indexOf("--backend") + 1] || "cpu";
const LAYERS = {  // Keras class -> [tf.layers factory, weight names in TF.js's order]
  Conv1D: ["conv1d", ["kernel", "bias"]], Conv2D: ["conv2d", ["kernel", "bias"]],
  Conv3D: ["conv3d", ["kernel", "bias"]], Conv2DTranspose: ["conv2dTranspose", ["kernel", "bias"]],
  Conv3DTranspose: ["conv3dTranspose", ["kernel", "bias"]], DepthwiseConv2D: ["depthwiseConv2d", ["kernel", "bias"]],
  SeparableConv2D: ["separableConv2d", ["depthwise_kernel", "pointwise_kernel", "bias"]],
  Cropping2D: ["cropping2D", []], ZeroPadding2D: ["zeroPadding2d", []], UpSampling2D: ["upSampling2d", []],
};
const ACTIVATIONS = {  // Keras name -> TF.js name
  linear: "linear", relu: "relu", relu6: "relu6", elu: "elu", selu: "selu", sigmoid: "sigmoid", tanh: "tanh",
  softplus: "softplus", softsign: "softsign", softmax: "softmax", silu: "swish", swish: "swish", mish: "mish",
  gelu: "gelu", hard_sigmoid: "hardSigmoid",
};
// Every activation Keras 3 accepts (the others are invalid cases: passed on for TF.js to reject).
const KERAS_ACTIVATIONS = new Set(["linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "exponential",
  "sigmoid", "log_sigmoid", "tanh", "tanh_shrink", "softsign", "silu", "swish", "gelu", "mish", "hard_silu",
  "hard_swish", "softplus", "squareplus", "sparse_plus", "hard_sigmoid", "hard_tanh", "sparse_sigmoid",
  "soft_shrink", "hard_shrink", "softmax", "log_softmax", "sparsemax", "glu"]);
const KERAS_INTERPOLATIONS = new Set(["nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area"]);
const CAMEL = {kernel_size: "kernelSize", dilation_rate: "dilationRate", data_format: "dataFormat",
  use_bias: "useBias", depth_multiplier: "depthMultiplier"};
const FORMATS = {channels_last: "channelsLast", channels_first: "channelsFirst"};
const IGNORED = /(_initializer|_regularizer|_constraint)$/;  // training-time: not what forward computes

class Declined extends Error {}

function declaration() {
  const core = (extra) => ["channels_first", ...extra];
  return {layers: {Conv1D: core(["causal"]), Conv2D: core([]), Conv3D: core([]), Conv2DTranspose: core([]),
    Conv3DTranspose: core([]), DepthwiseConv2D: core([]), SeparableConv2D: core([]), Cropping2D: core([]),
    ZeroPadding2D: core([]), UpSampling2D: core(["interpolation:bilinear"])},
    dtypes: ["float32"], gradients: true};
}

function config(spec) {
  const out = {};
  for (const [key, value] of Object.entries(spec.config || {})) {
    if (IGNORED.test(key)) continue;
    if (key === "groups") { if (value !== 1) throw new Declined("TF.js's conv layers have no `groups`"); continue; }
    if (key === "output_padding") { if (value !== null) throw new Declined("TF.js's layers have no `output_padding`"); continue; }
    if (key === "activation" && KERAS_ACTIVATIONS.has(value)) {
      if (!(value in ACTIVATIONS)) throw new Declined(`TF.js has no activation ${value}`);
      out.activation = ACTIVATIONS[value];
      continue;
    }
    if (key === "interpolation" && KERAS_INTERPOLATIONS.has(value) && !["nearest", "bilinear"].includes(value)) {
      throw new Declined(`TF.js's upSampling2d has no interpolation ${value}`);
    }
    out[CAMEL[key] || key] = key === "data_format" ? (FORMATS[value] || value) : value;
  }
  return out;
}

function build(spec, inputs, weights) {
  const entry = LAYERS[spec.class_name];
  if (!entry || typeof tf.layers[entry[0]] !== "function") throw new Declined(`TF.js has no ${spec.class_name}`);
  const layer = tf.layers[entry[0]](config(spec));
  layer.apply(inputs);  // builds its variables for this input shape
  const names = entry[1].filter((n) => n in weights);
  if (names.length) layer.setWeights(names.map((n) => weights[n]));
  return [layer, names];
}

function call(method, spec, arrays, weightNames) {
  if (arrays.inputs.dtype !== "float32") throw new Declined(`${BACKEND} scores float32 only`);
  let layer = null;
  try {
    return tf.tidy(() => compute());
  } finally {
    if (layer !== null && layer.built) layer.dispose();  // its variables: tidy does not own them
  }

  function compute() {
    const x = tf.tensor(arrays.inputs.data, arrays.inputs.shape, "float32");
    const weights = {};
    for (const name of weightNames) weights[name] = tf.tensor(arrays[name].data, arrays[name].shape, "float32");
    const built = build(spec, x, weights);
    layer = built[0];
    const names = built[1];
    if (method === "forward") return {output: layer.apply(x)};
    const dy = tf.tensor(arrays.output_grad.data, arrays.output_grad.shape, "float32");
    const loss = (input) => tf.sum(tf.mul(layer.apply(input), dy));
    const out = {inputs: tf.grad(loss)(x)};
    if (layer.trainableWeights.length) {  // Cropping, ZeroPadding, UpSampling have none
      const {grads} = tf.variableGrads(() => loss(x), layer.trainableWeights.map((w) => w.read()));
      layer.trainableWeights.forEach((w, i) => { out[names[i]] = grads[w.read().name]; });
    }
    return out;
  }
}

// ------------------------------------------------------------------ frames (P1-P4)

const SIZES = {float32: 4, float64: 8, int32: 4};
let buffer = Buffer.alloc(0);
let queue = Promise.resolve();

function send(header, arrays = {}) {
  const entries = Object.entries(arrays);
  header.arrays = entries.map(([name, a]) => ({name, dtype: a.dtype, shape: a.shape}));
  const text = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(text.length);
  process.stdout.write(Buffer.concat([length, text, ...entries.map(([, a]) => Buffer.from(a.data.buffer,
    a.data.byteOffset, a.data.byteLength))]));
}

function decode(header, body) {
  const arrays = {};
  let offset = 0;
  for (const {name, dtype, shape} of header.arrays || []) {
    const count = shape.reduce((a, b) => a * b, 1), bytes = count * (SIZES[dtype] || 2);
    const raw = body.subarray(offset, offset + bytes);
    offset += bytes;
    const copy = new Uint8Array(raw).buffer;  // aligned
    arrays[name] = {dtype, shape, data: dtype === "float32" ? new Float32Array(copy) : dtype === "float64" ?
      new Float64Array(copy) : null};
  }
  return arrays;
}

async function answer(header, body) {
  const reply = {id: header.id};
  try {
    const result = call(header.method, header.spec, decode(header, body), header.weights || []);
    const arrays = {};
    for (const [name, t] of Object.entries(result)) {
      if (t === undefined) continue;
      arrays[name] = {dtype: "float32", shape: t.shape, data: await t.data()};
      t.dispose();
    }
    send({...reply, status: "ok"}, arrays);
  } catch (err) {
    if (err instanceof Declined) send({...reply, status: "unsupported", reason: err.message});
    else send({...reply, status: "error", message: `${err.name}: ${err.message}`.slice(0, 2000)});
  }
}

function arraysBytes(header) {
  return (header.arrays || []).reduce((n, a) => n + a.shape.reduce((x, y) => x * y, 1) * (SIZES[a.dtype] || 2), 0);
}

function pump() {
  for (;;) {
    if (buffer.length < 4) return;
    const n = buffer.readUInt32LE(0);
    if (buffer.length < 4 + n) return;
    const header = JSON.parse(buffer.subarray(4, 4 + n).toString("utf8"));
    const total = 4 + n + arraysBytes(header);
    if (buffer.length < total) return;
    const body = Buffer.from(buffer.subarray(4 + n, total));
    buffer = buffer.subarray(total);
    queue = queue.then(() => answer(header, body));
  }
}

async function main() {
  if (BACKEND === "wasm") {
    const wasm = require("@tensorflow/tfjs-backend-wasm");
    wasm.setWasmPaths(path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm")), path.sep));
  }
  if (!(await tf.setBackend(BACKEND))) throw new Error(`backend ${BACKEND} did not initialize`);
  await tf.ready();
  tf.enableProdMode();  // no per-op NaN checks: a deployment's setting
  send({protocol: "conv-conformance-exec/1", name: BACKEND === "cpu" ? "tfjs" : `tfjs-${BACKEND}`,
    versions: {"@tensorflow/tfjs": tf.version.tfjs, node: process.version},
    environment: {tfjs_backend: tf.getBackend(), tfjs_prod: "true",
      wasm_simd: BACKEND === "wasm" ? String(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) : "n/a",
      wasm_threads: BACKEND === "wasm" ? String(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")) : "n/a"},
    methods: ["forward", "vjp"], declaration: declaration()});
  process.stdin.on("data", (chunk) => { buffer = Buffer.concat([buffer, chunk]); pump(); });
  process.stdin.on("end", () => queue.then(() => process.exit(0)));
}

main().catch((err) => { process.stderr.write(`${err.stack}\n`); process.exit(1); });
