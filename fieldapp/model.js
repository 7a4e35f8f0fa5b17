// The station's model on the phone: model.onnx in onnxruntime-web (WebAssembly), photos prepared as the station
// prepares them (core.js), the station's verdict rule applied to the graph's outputs.

import * as core from "./core.js";

let ort = null;

async function runtime() {
  if (!ort) {
    ort = await import("./vendor/ort.wasm.min.mjs");
    ort.env.wasm.wasmPaths = new URL("./vendor/", import.meta.url).href;
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  }
  return ort;
}

/** The model package (the zip the station sends, whole or without the parts this phone keeps) read into its
 * description, its graph and the parts it carries, each part's bytes checked against its name (sha256). */
export async function unpack(zipBytes) {
  const files = await unzip(new Uint8Array(zipBytes));
  if (!files["model.json"] || !files["model.onnx"]) throw new Error("the model package is incomplete");
  const meta = core.checkPackage(JSON.parse(new TextDecoder().decode(files["model.json"])));
  const parts = {};
  for (const { sha256 } of meta.parts) {
    const data = files[`parts/${sha256}`];
    if (!data) continue;
    if ((await sha256Hex(data)) !== sha256) throw new Error("a part of the model package is damaged");
    parts[sha256] = data;
  }
  return { meta, graph: files["model.onnx"], parts };
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A zip's stored or deflated files (the package holds two), with the browser's own decompression. */
async function unzip(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = bytes.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  const count = view.getUint16(end + 10, true);
  let p = view.getUint32(end + 16, true);
  const out = {};
  for (let i = 0; i < count; i++) {
    const method = view.getUint16(p + 10, true);
    const size = view.getUint32(p + 20, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const local = view.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const data = bytes.subarray(start, start + size);
    out[name] = method === 0 ? data : new Uint8Array(await new Response(new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"))).arrayBuffer());
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

export class Model {
  constructor(meta, session) {
    this.meta = meta;
    this.session = session;
  }

  /** A session from the graph and every part model.json names (``parts``: sha256 -> bytes); throws when one is
   * missing, so a phone with a partial download keeps its old model. */
  static async load(graph, meta, parts) {
    const missing = meta.parts.filter((p) => !parts[p.sha256]);
    if (missing.length) throw new Error(`the model package lacks ${missing.length} of its parts`);
    const o = await runtime();
    // The 8-bit weights' DequantizeLinear nodes are folded into float constants once, at load (not on every photo).
    const session = await o.InferenceSession.create(graph, {
      executionProviders: ["wasm"], graphOptimizationLevel: "all", extra: { session: { disable_quant_qdq: "1" } },
      externalData: meta.parts.map((p) => ({ path: p.sha256, data: parts[p.sha256] })),
    });
    return new Model(meta, session);
  }

  /** A photo (Blob) as the model's input; throws for a file the browser cannot decode. */
  async prepare(blob) {
    const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const { width, height } = bitmap;
    const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(width, height) : Object.assign(document.createElement("canvas"), { width, height });
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const rgb = core.rgbaToRGB(ctx.getImageData(0, 0, width, height).data, width, height);
    const size = this.meta.input.image_size;
    const small = core.resizeRGB(rgb, width, height, size, size);
    return core.toTensor(small, size, this.meta.input.mean, this.meta.input.std);
  }

  /** The graph's numbers for one photo: calibrated probabilities, distance, fish-likeness. */
  async numbers(blob) {
    const o = await runtime();
    const size = this.meta.input.image_size;
    const input = new o.Tensor("float32", await this.prepare(blob), [1, 3, size, size]);
    const out = await this.session.run({ [this.meta.input.name]: input });
    return { probs: Array.from(out.probabilities.data), distance: out.distance.data[0], fish: out.fish_likeness.data[0] };
  }

  /** One photo's answer, shaped as `fishcore predict --json` gives it. */
  async answer(blob, name = "photo") {
    const n = await this.numbers(blob);
    return { ...core.answer(name, n.probs, n.distance, n.fish, this.meta), numbers: n };
  }
}
