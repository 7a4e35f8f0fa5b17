// node --test: the field app's decisions against the station's (the numbers come from fishcore and Pillow).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as core from "../core.js";
import { phoneLanguage, percent, speciesName, word } from "../i18n.js";

const META = {
  classes: ["Sea Bass", "Shrimp", "Trout"],
  species: { Trout: { en: "Rainbow trout", id: "Ikan trout pelangi" } },
  threshold: 0.6, distance_threshold: 0.3, fish_threshold: 0.2,
  prediction_sets: { coverage: 0.9, quantile: 0.75 },
};

// The station's side of the contract, written by its own code (python -m fishcore.server.contract).
const contract = (name) => JSON.parse(readFileSync(new URL(`../contract/${name}`, import.meta.url)));
const CASES = contract("cases.json");

test("the resize is the station's, value for value (cases made by the station's own Resize, antialiased, on 8-bit pixels)", () => {
  const cases = contract("resize-cases.json");
  for (const c of cases) {
    const got = core.resizeRGB(Uint8ClampedArray.from(c.src), c.w, c.h, c.ow, c.oh);
    assert.deepEqual(Array.from(got), c.want, `${c.w}x${c.h} -> ${c.ow}x${c.oh}`);
  }
});

test("transparency goes onto white and the tensor is normalised per channel, channels first", () => {
  assert.deepEqual(Array.from(core.rgbaToRGB(Uint8ClampedArray.from([10, 20, 30, 255, 0, 0, 0, 0]), 2, 1)), [10, 20, 30, 255, 255, 255]);
  const t = core.toTensor(Uint8ClampedArray.from([255, 0, 51]), 1, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
  assert.equal(t.length, 3);
  assert.ok(Math.abs(t[0] - 1) < 1e-6 && Math.abs(t[1] + 1) < 1e-6 && Math.abs(t[2] - (51 / 255 - 0.5) / 0.5) < 1e-6);
});

test("the verdict rule is fishcore.inference.openset.judge", () => {
  assert.deepEqual(core.judge(0.9, 0.1, 0.9, META), ["confident", "known"]);
  assert.deepEqual(core.judge(0.5, 0.1, 0.9, META), ["uncertain", "low_confidence"]);
  assert.deepEqual(core.judge(0.99, 0.5, 0.1, META), ["not_a_fish", "not_fish_like"]);
  assert.deepEqual(core.judge(0.99, 0.5, 0.5, META), ["uncertain", "unfamiliar"]);
  assert.deepEqual(core.judge(0.6, 0.3, 0.5, META), ["confident", "known"]); // the thresholds are inclusive
  assert.deepEqual(core.judge(0.99, 0.9, 0.0, { ...META, distance_threshold: null }), ["confident", "known"]);
});

test("the prediction set holds the top species and every one above 1 - quantile", () => {
  assert.deepEqual(core.predictionSet([0.3, 0.45, 0.25], META), [1, 0, 2]);
  assert.deepEqual(core.predictionSet([0.1, 0.85, 0.05], META), [1]);
  assert.deepEqual(core.predictionSet([0.5, 0.5, 0.0], { ...META, prediction_sets: { quantile: 0.1 } }), [0]); // ties: class order
  assert.deepEqual(core.predictionSet([0.2, 0.7, 0.1], { ...META, prediction_sets: {} }), []);
});

test("an answer is shaped as `fishcore predict --json` gives it", () => {
  const a = core.answer("p.jpg", [0.1, 0.2, 0.7], 0.1, 0.9, META);
  assert.deepEqual(a.top.map((x) => x.label), ["Trout", "Shrimp", "Sea Bass"]);
  assert.equal(a.verdict, "confident");
  assert.deepEqual(a.set.map((x) => x.label), ["Trout"]); // 0.2 and 0.1 are under 1 - 0.75
  assert.equal(a.set_coverage, 0.9);
});

test("several shots combine as Predictor.predict_together: mean log-probabilities, renormalised", () => {
  const shots = [{ probs: [0.2, 0.2, 0.6], distance: 0.1, fish: 0.8 }, { probs: [0.1, 0.3, 0.6], distance: 0.2, fish: 0.6 }];
  const a = core.together(shots, META);
  const raw = [Math.sqrt(0.02), Math.sqrt(0.06), 0.6];
  const total = raw.reduce((x, y) => x + y);
  assert.ok(Math.abs(a.top[0].prob - 0.6 / total) < 1e-12);
  assert.equal(a.file, "2 photos together");
  assert.ok(Math.abs(a.distance - 0.15) < 1e-12 && Math.abs(a.fish_likeness - 0.7) < 1e-12);
});

test("the verdict rule gives the station's verdict on every case the station computed", () => {
  for (const c of CASES.verdicts) {
    const meta = { ...CASES.meta, distance_threshold: c.profile ? CASES.meta.distance_threshold : null };
    assert.deepEqual(core.judge(c.confidence, c.distance, c.fish, meta), [c.verdict, c.reason], JSON.stringify(c));
  }
});

test("prediction sets are the station's SetRule.members", () => {
  for (const c of CASES.sets) assert.deepEqual(core.predictionSet(c.probs, CASES.meta), c.set, JSON.stringify(c.probs));
});

test("several shots together are the station's combine_shots, to 1e-12", () => {
  const meta = CASES.meta;
  for (const c of CASES.shots) {
    const shots = c.probs.map((probs) => ({ probs, distance: 0.1, fish: 0.9 }));
    const a = core.together(shots, meta, meta.classes.length);
    for (const { label, prob } of a.top) {
      const want = c.combined[meta.classes.indexOf(label)];
      assert.ok(Math.abs(prob - want) < 1e-12, `${label}: ${prob} vs ${want}`);
    }
  }
});

test("what an entry counts as is the station's counted_as", () => {
  for (const c of CASES.counted_as) {
    const words = c.word ? [{ word: c.word, species: c.species }] : [];
    assert.equal(core.countedAs({ words, answer: { label: c.label, verdict: c.verdict } }), c.counted_as, JSON.stringify(c));
  }
});

test("the verdict words are the station's, in both languages", () => {
  const words = contract("words.json");
  for (const lang of ["en", "id"]) {
    assert.equal(word(lang, "confident"), words[lang].confident);
    assert.equal(word(lang, "notSure"), words[lang].uncertain);
    assert.equal(word(lang, "notAFish"), words[lang].not_a_fish);
  }
});

test("the app reads the station's package format and checks it before use", () => {
  const pkg = contract("package.json");
  assert.equal(core.PACKAGE_FORMAT, pkg.format);
  assert.deepEqual(core.PACKAGE_FIELDS, pkg.fields);
  assert.deepEqual(core.PACKAGE_OUTPUTS, pkg.outputs);
  const given = { format: pkg.format, classes: ["a"], parts: [{ sha256: "ab".repeat(32), bytes: 3 }] };
  const meta = Object.fromEntries(pkg.fields.map((f) => [f, f in given ? given[f] : null]));
  assert.equal(core.checkPackage(meta), meta);
  assert.throws(() => core.checkPackage({ ...meta, parts: [{ sha256: "../model.onnx" }] }), /sha256/);
  assert.throws(() => core.checkPackage({ ...meta, format: pkg.format + 1 }), /format/);
  assert.throws(() => core.checkPackage({ format: pkg.format }), /lacks/);
});

test("the phone's limits are the station's (its request schema)", () => {
  const schema = contract("schema.json");
  const entry = schema.EntryIn.properties;
  const word = schema.WordIn.properties;
  assert.equal(core.LIMITS.place, entry.place.maxLength);
  assert.equal(core.LIMITS.count, entry.count.maximum);
  const weight = entry.weight_kg.anyOf.find((t) => t.type === "number");
  assert.equal(core.LIMITS.weightKg, weight.maximum);
  assert.equal(core.LIMITS.species, word.species.anyOf.find((t) => t.type === "string").maxLength);
});

test("a species name the phone takes is one the station takes, and no other (check_species's cases)", () => {
  for (const c of CASES.names) assert.equal(core.checkSpecies(c.text), c.species, JSON.stringify(c.text));
  for (const c of CASES.names) {
    const place = core.cleanText(c.text, core.LIMITS.place);
    assert.ok(!/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}]/u.test(place) && !/^\s|\s$/u.test(place), JSON.stringify(place));
  }
});

test("today's catch counts the user's word first, then a confident answer; no fish is left out", () => {
  const day = "2026-12-04";
  const e = (label, verdict, count, words = [], taken = `${day}T06:00:00+07:00`) => ({ answer: { label, verdict }, count, words, taken_at: taken });
  const entries = [
    e("Trout", "confident", 3),
    e("Trout", "uncertain", 2),
    e("Shrimp", "confident", 1, [{ word: "wrong", species: "Kakap merah" }]),
    e("Trout", "confident", 5, [{ word: "not_fish" }]),
    e("Trout", "not_a_fish", 1),
    e("Trout", "confident", 9, [], "2026-12-03T06:00:00+07:00"),
  ];
  assert.deepEqual(core.todaysCatch(entries, day), [["Trout", 3], ["", 2], ["Kakap merah", 1]]);
});

test("words: the phone's language, the species card's name, numbers the language's way", () => {
  assert.equal(phoneLanguage(["id-ID", "en"]), "id");
  assert.equal(phoneLanguage(["fr-FR"]), "en");
  assert.equal(word("id", "fish", { n: 3 }), "3 ekor");
  assert.equal(word("en", "waiting", { n: 2 }), "2 waiting to be sent");
  assert.equal(speciesName(META, "Trout", "id"), "Ikan trout pelangi");
  assert.equal(speciesName(META, "Shrimp", "id"), "Shrimp");
  assert.equal(percent(0.985, "id", 1), "98,5%");
});

test("a new model's notice names the species the phone's model did not know", () => {
  const news = core.modelNews({ classes: ["Gilt-Head Bream", "Red Mullet"] },
    { folder: "lsfd-field-v2", checksum: "ab", classes: ["Gilt-Head Bream", "Red Mullet", "Dascyllus reticulatus"] });
  assert.deepEqual(news.added, ["Dascyllus reticulatus"]);
  assert.equal(news.folder, "lsfd-field-v2");
  assert.deepEqual(core.modelNews({ classes: ["a", "b"] }, { classes: ["b", "a"] }).added, []);
});
