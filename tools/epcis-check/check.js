// Reads an EPCIS document (JSON) on stdin; prints {"ok": bool, "errors": [...]} on stdout.
// Checks, with implementations independent of MedChain's Python code:
//  - epcis2.js validateEpcisDocument: GS1's EPCIS 2.0 schema, known event fields, and that every
//    extension (prefix:name) is declared in the document's @context;
//  - digital-link.js: every https://id.gs1.org/... identifier in the document against its compiled
//    GS1 Digital Link ABNF grammar (validateUrl). Its DigitalLink(...).isValid() is not used: that
//    object model does not know AI 417 (party GLN) as a primary key, which the grammar does.
'use strict';
const { validateEpcisDocument, setup } = require('epcis2.js');
const { validateUrl } = require('digital-link.js/src/util');

setup({ checkExtensions: true }); // every prefix:name extension must be declared in @context

const input = require('fs').readFileSync(0, 'utf8');
const document = JSON.parse(input);
const errors = [];
try {
  const result = validateEpcisDocument(document, false);
  if (!result.success) errors.push(...result.errors);
} catch (e) {
  errors.push(`epcis2.js: ${e.message}`);
}
const links = new Set();
const walk = (value) => {
  if (typeof value === 'string') {
    if (value.startsWith('https://id.gs1.org/')) links.add(value);
  } else if (Array.isArray(value)) value.forEach(walk);
  else if (value && typeof value === 'object') Object.values(value).forEach(walk);
};
walk(document.epcisBody);
for (const link of links) {
  let valid = false;
  try { valid = validateUrl(link); } catch (e) { valid = false; }
  if (!valid) errors.push(`digital-link.js: not a valid GS1 Digital Link: ${link}`);
}
process.stdout.write(JSON.stringify({ ok: errors.length === 0, errors, links: links.size }) + '\n');
