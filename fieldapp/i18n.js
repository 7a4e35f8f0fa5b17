// The field app's words in English and Bahasa Indonesia. The phone's language decides, the switch changes it.

export const WORDS = {
  en: {
    title: "Catch log",
    take: "Take a photo of a fish",
    another: "Add another shot of this fish",
    newFish: "Next fish",
    looking: "Looking...",
    confident: "Confident",
    notSure: "Not sure",
    probablyOneOf: "Probably one of: {species}",
    notAFish: "Not a fish I can name",
    unfamiliar: "A fish unlike the ones I know",
    right: "Right",
    wrong: "Wrong, it is...",
    notFish: "Not a fish",
    itIs: "It is",
    otherSpecies: "another species (type its name)",
    save: "Save",
    count: "How many fish",
    weight: "Weight in kg (optional)",
    place: "Place or landing site",
    today: "Today's catch",
    nothingToday: "Nothing logged today yet.",
    fish: "{n} fish",
    waiting: "{n} waiting to be sent",
    allSent: "Everything is sent",
    send: "Send now",
    sending: "Sending...",
    sent: "Sent {n}",
    offline: "No network: the catch stays on this phone and is sent later",
    online: "Online",
    connect: "Connect this phone to your station",
    code: "The station's code for this phone",
    connectButton: "Connect",
    needModel: "Open this app once with a network to get the fish model.",
    gettingModel: "Getting the fish model from the station...",
    modelReady: "Model ready",
    entries: "Logged",
    wordRight: "you said: right",
    wordWrong: "you said: it is {species}",
    wordNotFish: "you said: not a fish",
    noWord: "no word yet",
    synced: "sent",
    notSynced: "not sent yet",
    refused: "The station refused this: {reason}",
    notPhoto: "This file is not a photo the app can read.",
    language: "Bahasa Indonesia",
    wipe: "Remove everything from this phone",
    wipeConfirm: "Remove every entry, photo and the model from this phone, also what is not sent yet?",
    modelUpdated: "The station sent a new fish model: it has learned from the photos you corrected.",
    modelNewSpecies: "The station sent a new fish model. It now knows: {species}.",
    ok: "OK",
    closest: "Closest: {species}",
    modelProblem: "The station's model cannot be used here: {reason}",
    badName: "Type the species' name (letters, no / or \\, not starting with a dot).",
    modelSaid: "The model said: {answer}",
  },
  id: {
    title: "Catatan tangkapan",
    take: "Foto ikan",
    another: "Tambah foto lain dari ikan ini",
    newFish: "Ikan berikutnya",
    looking: "Sedang melihat...",
    confident: "Yakin",
    notSure: "Tidak yakin",
    probablyOneOf: "Mungkin salah satu dari: {species}",
    notAFish: "Bukan ikan yang bisa saya kenali",
    unfamiliar: "Ikan yang tidak mirip dengan yang saya kenal",
    right: "Benar",
    wrong: "Salah, ini...",
    notFish: "Bukan ikan",
    itIs: "Ini adalah",
    otherSpecies: "spesies lain (ketik namanya)",
    save: "Simpan",
    count: "Berapa ekor",
    weight: "Berat dalam kg (boleh kosong)",
    place: "Tempat atau lokasi pendaratan",
    today: "Tangkapan hari ini",
    nothingToday: "Belum ada catatan hari ini.",
    fish: "{n} ekor",
    waiting: "{n} menunggu dikirim",
    allSent: "Semua sudah terkirim",
    send: "Kirim sekarang",
    sending: "Mengirim...",
    sent: "Terkirim {n}",
    offline: "Tidak ada jaringan: tangkapan disimpan di ponsel ini dan dikirim nanti",
    online: "Terhubung",
    connect: "Hubungkan ponsel ini ke stasiun Anda",
    code: "Kode dari stasiun untuk ponsel ini",
    connectButton: "Hubungkan",
    needModel: "Buka aplikasi ini sekali dengan jaringan untuk mengambil model ikan.",
    gettingModel: "Mengambil model ikan dari stasiun...",
    modelReady: "Model siap",
    entries: "Tercatat",
    wordRight: "Anda bilang: benar",
    wordWrong: "Anda bilang: ini {species}",
    wordNotFish: "Anda bilang: bukan ikan",
    noWord: "belum ada jawaban",
    synced: "terkirim",
    notSynced: "belum terkirim",
    refused: "Stasiun menolak ini: {reason}",
    notPhoto: "Berkas ini bukan foto yang bisa dibaca aplikasi.",
    language: "English",
    wipe: "Hapus semua dari ponsel ini",
    wipeConfirm: "Hapus semua catatan, foto, dan model dari ponsel ini, termasuk yang belum terkirim?",
    modelUpdated: "Stasiun mengirim model ikan baru: model ini sudah belajar dari foto yang Anda koreksi.",
    modelNewSpecies: "Stasiun mengirim model ikan baru. Sekarang model ini mengenal: {species}.",
    ok: "OK",
    closest: "Paling mirip: {species}",
    modelProblem: "Model dari stasiun tidak bisa dipakai di sini: {reason}",
    badName: "Ketik nama spesiesnya (huruf, tanpa / atau \\, tidak diawali titik).",
    modelSaid: "Kata model: {answer}",
  },
};

/** The phone's language when it is one of ours, else English. */
export function phoneLanguage(languages) {
  for (const tag of languages || []) {
    const code = String(tag).toLowerCase().split("-")[0];
    if (code === "id" || code === "in" || code === "ms") return "id";
    if (code === "en") return "en";
  }
  return "en";
}

/** A word in a language, with {named} values filled in. */
export function word(lang, key, values = {}) {
  const text = (WORDS[lang] || WORDS.en)[key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

/** A species as the card names it in this language (the class name when the card has none). */
export function speciesName(meta, label, lang) {
  const card = (meta && meta.species && meta.species[label]) || {};
  return card[lang] || card.en || label;
}

/** A share as a percentage in the language's way: 98.5% or 98,5%. */
export function percent(value, lang, digits = 0) {
  const text = (value * 100).toFixed(digits);
  return (lang === "id" ? text.replace(".", ",") : text) + "%";
}
