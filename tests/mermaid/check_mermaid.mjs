// Parses every diagram of a samples file (mermaid_samples' output) with the real Mermaid
// parser and checks that Mermaid understood exactly the participants and messages meant:
// a hostile label that broke out of its line would add, drop or change one.
// Usage: node check_mermaid.mjs <node_modules dir> <samples.json>
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [modules, samplesFile] = process.argv.slice(2);
const entry = path.join(modules, 'mermaid', 'dist', 'mermaid.core.mjs');
const { default: mermaid } = await import(pathToFileURL(entry).href);
mermaid.initialize({ startOnLoad: false });

// Mermaid turns entity codes (#NNN;) into placeholders while parsing and back when rendering.
const decode = (s) =>
  s.replace(/ﬂ°°(\d+)¶ß/g, (_, n) => String.fromCodePoint(Number(n)))
   .replace(/ﬂ°(\w+)¶ß/g, (_, n) => `&${n};`);

let failures = 0;
const fail = (name, what) => { console.log(`FAIL ${name}: ${what}`); failures += 1; };
const samples = JSON.parse(readFileSync(samplesFile, 'utf8'));
for (const s of samples) {
  try {
    const parsed = await mermaid.parse(s.diagram);
    if (parsed.diagramType !== 'sequence') fail(s.name, `diagram type ${parsed.diagramType}`);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(s.diagram);
    const actors = [...diagram.db.getActors().values()].map((a) => decode(a.description));
    const messages = diagram.db.getMessages().map((m) => [m.from, m.to, decode(m.message)]);
    const want = JSON.stringify({ actors: s.participants, messages: s.messages });
    const got = JSON.stringify({ actors, messages });
    if (want !== got) fail(s.name, `\n  want ${want}\n  got  ${got}`);
    else console.log(`ok ${s.name}: ${actors.length} participants, ${messages.length} messages`);
  } catch (e) {
    fail(s.name, `mermaid rejected it: ${String(e).split('\n').slice(0, 3).join(' ')}`);
  }
}
if (failures > 0) process.exit(1);
console.log(`all ${samples.length} diagrams parse as meant`);
