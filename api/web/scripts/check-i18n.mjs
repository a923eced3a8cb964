// Fails the build when a dictionary lacks a key the other has, or a t("...") key used in the
// sources is in neither: a missing word shows up here, not on the wall.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import zh from "../src/i18n/zh.js";
import en from "../src/i18n/en.js";

const problems = [];
for (const [name, a, b] of [["zh", zh, en], ["en", en, zh]]) {
  for (const key of Object.keys(b)) if (!(key in a)) problems.push(`${name} lacks ${key}`);
}
function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(vue|js)$/.test(f) ? [p] : [];
  });
}
for (const file of files(new URL("../src", import.meta.url).pathname)) {
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(/\bt\(\s*"([a-zA-Z0-9_]+\.[a-zA-Z0-9_.]+)"/g)) {
    if (!(m[1] in zh)) problems.push(`${file}: ${m[1]} is in no dictionary`);
  }
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`i18n: ${Object.keys(zh).length} keys in zh and en`);
