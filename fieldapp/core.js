// The field app's decisions, as plain functions (no browser needed: `node --test` runs them):
// the photo's preparation exactly as the station prepares it, the verdict rule of
// fishcore.inference.openset.judge, the prediction set of fishcore.inference.calibration.SetRule,
// several shots of one fish combined as Predictor.predict_together combines them, and the day's catch.

// --- preparing a photo: the station's resize, bit for bit -----------------------------------------
// The station resizes 8-bit pixels with torchvision's antialiased bilinear resize, which on the CPU is
// Pillow's separable resampling (a horizontal pass to 8 bits over every row, then a vertical one) with
// the weights in 16-bit fixed point at a precision chosen per pass: the most bits that keep the largest
// weight under 2^15. This is that computation, value for value.

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const support = scale >= 1.0 ? scale : 1.0;
  const invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  let wtMax = 0.0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0.0;
    for (let j = 0; j < xsize; j++) {
      const t = Math.abs((j + xmin - center + 0.5) * invscale);
      const w = t < 1.0 ? 1.0 - t : 0.0;
      weights[i * ksize + j] = w;
      total += w;
    }
    if (total !== 0.0) {
      for (let j = 0; j < xsize; j++) {
        weights[i * ksize + j] /= total;
        wtMax = Math.max(wtMax, weights[i * ksize + j]);
      }
    }
    bounds[i * 2] = xmin;
    bounds[i * 2 + 1] = xsize;
  }
  let precision = 0;
  for (; precision < 22; precision++) {
    if (Math.trunc(0.5 + wtMax * 2 ** (precision + 1)) >= 1 << 15) break;
  }
  const kk = new Int32Array(outSize * ksize);
  for (let n = 0; n < kk.length; n++) {
    const v = weights[n] * 2 ** precision;
    kk[n] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return { bounds, kk, ksize, precision };
}

function clip8(sum, precision) {
  const v = Math.floor(sum / 2 ** precision);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Resize 8-bit RGB pixels (width x height x 3, row-major) to outW x outH, as the station does. */
export function resizeRGB(src, width, height, outW, outH) {
  let img = src;
  let w = width;
  if (outW !== width) {
    const h = coefficients(width, outW);
    const half = h.precision > 0 ? 2 ** (h.precision - 1) : 0;
    const tmp = new Uint8ClampedArray(outW * height * 3);
    for (let y = 0; y < height; y++) {
      const row = y * width * 3;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = h.bounds[xx * 2];
        const xsize = h.bounds[xx * 2 + 1];
        const k = xx * h.ksize;
        let s0 = half, s1 = half, s2 = half;
        for (let x = 0; x < xsize; x++) {
          const c = h.kk[k + x];
          const p = row + (x + xmin) * 3;
          s0 += src[p] * c;
          s1 += src[p + 1] * c;
          s2 += src[p + 2] * c;
        }
        const o = (y * outW + xx) * 3;
        tmp[o] = clip8(s0, h.precision);
        tmp[o + 1] = clip8(s1, h.precision);
        tmp[o + 2] = clip8(s2, h.precision);
      }
    }
    img = tmp;
    w = outW;
  }
  if (outH === height) return img === src ? Uint8ClampedArray.from(src) : img;
  const v = coefficients(height, outH);
  const half = v.precision > 0 ? 2 ** (v.precision - 1) : 0;
  const out = new Uint8ClampedArray(w * outH * 3);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = v.bounds[yy * 2];
    const ysize = v.bounds[yy * 2 + 1];
    const k = yy * v.ksize;
    for (let xx = 0; xx < w; xx++) {
      let s0 = half, s1 = half, s2 = half;
      for (let y = 0; y < ysize; y++) {
        const c = v.kk[k + y];
        const p = ((y + ymin) * w + xx) * 3;
        s0 += img[p] * c;
        s1 += img[p + 1] * c;
        s2 += img[p + 2] * c;
      }
      const o = (yy * w + xx) * 3;
      out[o] = clip8(s0, v.precision);
      out[o + 1] = clip8(s1, v.precision);
      out[o + 2] = clip8(s2, v.precision);
    }
  }
  return out;
}

/** RGBA pixels (a canvas's ImageData) to RGB; transparency onto white, as the station reads photos. */
export function rgbaToRGB(rgba, width, height) {
  const out = new Uint8ClampedArray(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    const a = rgba[i + 3];
    if (a === 255) {
      out[j] = rgba[i];
      out[j + 1] = rgba[i + 1];
      out[j + 2] = rgba[i + 2];
    } else {
      for (let c = 0; c < 3; c++) out[j + c] = Math.round((rgba[i + c] * a + 255 * (255 - a)) / 255);
    }
  }
  return out;
}

/** 8-bit RGB at the model's size to the model's input: NCHW float32, scaled to 0-1, normalised per channel. */
export function toTensor(rgb, size, mean, std) {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (rgb[i * 3 + c] / 255 - mean[c]) / std[c];
  }
  return out;
}

// --- limits: the station's (checks.py), held to fieldapp/contract/schema.json by the tests -----------------

export const LIMITS = { place: 200, species: 100, count: 100000, weightKg: 100000 };

// What the station refuses in any name (checks.py's HIDDEN categories): control, format (zero-width, direction
// marks), line and paragraph separators, surrogates, private use.
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}]/u;
const HIDDEN_ALL = new RegExp(HIDDEN.source, "gu");
// Python's str.strip() whitespace (JavaScript's trim() also takes U+FEFF, which the station refuses instead).
const SPACE = "[\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const STRIP = new RegExp(`^${SPACE}+|${SPACE}+$`, "gu");
const strip = (text) => text.replace(STRIP, "");

/** A species name as the station takes it (fishcore's check_species), or null when it would be refused. */
export function checkSpecies(text) {
  const name = strip(String(text ?? "").normalize("NFC"));
  if (!name || [...name].length > LIMITS.species || /[/\\]/.test(name) || name.startsWith(".") || HIDDEN.test(name)) return null;
  return name;
}

/** Free text (a place) as the station takes it: hidden characters dropped, trimmed, within the limit. */
export function cleanText(text, limit) {
  return strip([...strip(String(text ?? "").normalize("NFC").replace(HIDDEN_ALL, ""))].slice(0, limit).join(""));
}

// --- the model package -----------------------------------------------------------------------------

/** The package format this app reads, and the fields of model.json it uses (held to the station's by
 * fieldapp/contract/package.json in the tests). */
export const PACKAGE_FORMAT = 2;
export const PACKAGE_FIELDS = ["format", "folder", "checksum", "classes", "species", "input", "threshold", "distance_threshold",
  "fish_threshold", "prediction_sets", "parts"];
export const PACKAGE_OUTPUTS = ["probabilities", "distance", "fish_likeness"];

/** Throws unless model.json describes a package this app can use (so a newer station's package is refused with
 * a reason rather than misread). */
export function checkPackage(meta) {
  if (!meta || meta.format !== PACKAGE_FORMAT) throw new Error(`model package format ${meta && meta.format} (this app reads ${PACKAGE_FORMAT}): open the app again with a network to update it`);
  const missing = PACKAGE_FIELDS.filter((f) => !(f in meta));
  if (missing.length) throw new Error(`the model package lacks ${missing.join(", ")}`);
  if (!Array.isArray(meta.classes) || !meta.classes.length) throw new Error("the model package names no species");
  if (!Array.isArray(meta.parts) || meta.parts.some((p) => !/^[0-9a-f]{64}$/.test(p && p.sha256))) throw new Error("the model package's parts are not named by their sha256");
  return meta;
}

// --- the verdict: fishcore.inference.openset.judge and the prediction set --------------------------

export const CONFIDENT = "confident";
export const UNCERTAIN = "uncertain";
export const NOT_A_FISH = "not_a_fish";

/** (verdict, reason) from the model's numbers and model.json's thresholds; the station's rule. */
export function judge(confidence, distance, fish, meta, threshold = meta.threshold) {
  const familiar = meta.distance_threshold == null || distance == null || distance <= meta.distance_threshold;
  if (familiar) return confidence >= threshold ? [CONFIDENT, "known"] : [UNCERTAIN, "low_confidence"];
  if (fish != null && meta.fish_threshold != null && fish < meta.fish_threshold) return [NOT_A_FISH, "not_fish_like"];
  return [UNCERTAIN, "unfamiliar"];
}

/** Indices sorted by probability, highest first (ties keep the class order, as numpy's stable argsort). */
export function ranked(probs) {
  return Array.from(probs, (p, i) => [p, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
}

/** The prediction set: every species with probability >= 1 - quantile, and always the top one. */
export function predictionSet(probs, meta) {
  const rule = meta.prediction_sets || {};
  if (rule.quantile == null) return [];
  const order = ranked(probs);
  return order.filter((i, n) => n === 0 || probs[i] >= 1.0 - rule.quantile - 1e-12);
}

/** One answer, shaped as `fishcore predict --json` gives it. */
export function answer(file, probs, distance, fish, meta, topK = 3, threshold = meta.threshold) {
  const order = ranked(probs);
  const k = Math.max(1, Math.min(topK, meta.classes.length));
  const top = order.slice(0, k).map((i) => ({ label: meta.classes[i], prob: probs[i] }));
  const [verdict, reason] = judge(probs[order[0]], distance, fish, meta, threshold);
  const set = predictionSet(probs, meta).map((i) => ({ label: meta.classes[i], prob: probs[i] }));
  const coverage = (meta.prediction_sets || {}).coverage ?? null;
  return { file, top, verdict, reason, distance, fish_likeness: fish, set, set_coverage: set.length ? coverage : null };
}

/** Several shots of one fish: their log-probabilities averaged, distance and fish-likeness their means. */
export function together(shots, meta, topK = 3, threshold = meta.threshold) {
  const n = meta.classes.length;
  const logp = new Float64Array(n);
  for (const s of shots) for (let c = 0; c < n; c++) logp[c] += Math.log(Math.min(Math.max(s.probs[c], 1e-12), 1.0));
  for (let c = 0; c < n; c++) logp[c] /= shots.length;
  const max = Math.max(...logp);
  const combined = Array.from(logp, (v) => Math.exp(v - max));
  const total = combined.reduce((a, b) => a + b, 0);
  for (let c = 0; c < n; c++) combined[c] /= total;
  const mean = (key) => shots.reduce((a, s) => a + s[key], 0) / shots.length;
  return answer(`${shots.length} photos together`, combined, mean("distance"), mean("fish"), meta, topK, threshold);
}

// --- the catch ---------------------------------------------------------------------------------------

/** What an entry counts as: the user's word, else a confident answer, else "" (not sure yet); null: no fish. */
export function countedAs(entry) {
  const last = entry.words.length ? entry.words[entry.words.length - 1] : null;
  if (last ? last.word === "not_fish" : entry.answer.verdict === NOT_A_FISH) return null;
  if (last) return last.word === "wrong" ? last.species : entry.answer.label;
  return entry.answer.verdict === CONFIDENT ? entry.answer.label : "";
}

/** Fish per species on one day (local date YYYY-MM-DD), most first. */
export function todaysCatch(entries, day) {
  const totals = new Map();
  for (const e of entries) {
    if (e.taken_at.slice(0, 10) !== day) continue;
    const species = countedAs(e);
    if (species === null) continue;
    totals.set(species, (totals.get(species) || 0) + e.count);
  }
  return [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** What a new model from the station brings, for the one-time notice: its version and the species it knows that
 * the phone's model did not. */
export function modelNews(before, after) {
  const had = new Set((before && before.classes) || []);
  return { folder: after.folder, checksum: after.checksum, added: (after.classes || []).filter((c) => !had.has(c)) };
}
