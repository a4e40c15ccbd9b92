#!/usr/bin/env node
// Opens the KPI report page in headless Chromium and checks what a reader sees against the JSON
// report: every chart drawn by plotly (its SVG, its bars, its value labels equal to the JSON's
// numbers), every table cell equal to the JSON's text, nothing fetched from the network, and a
// screenshot that is not blank.
//
//   node tests/browser/report_page.check.js REPORT.html REPORT.json SCREENSHOT.png
//
// Chromium: $MEDCHAIN_CHROMIUM, else /usr/bin/chromium (Debian's `chromium` package), driven by
// npm's playwright-core. Prints one JSON summary line; exits 1 with the failures listed.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];
const CHARTS = ['chart-table1', 'chart-durations', 'chart-claims', 'chart-access', 'chart-value'];
const MINUTE = 60, HOUR = 3600, DAY = 86400;

function fixed(value) {
  return value === null || value === undefined ? null : Number(value).toFixed(1);
}

function scaled(value, factor) {
  return value === null || value === undefined ? null : value * factor;
}

// The value label each chart must show, bar by bar, derived from the JSON report alone
// (a bar whose value is null is not drawn and has no label).
function expectedLabels(report) {
  const row = (key) => report.rows.find((r) => r.key === key);
  const table1 = [];
  for (const [key, factor] of [['retrieval', 1], ['duplicate_exams', 100], ['unauthorised', 1], ['disputes', 1]]) {
    const r = row(key);
    table1.push(scaled(r.before_value, factor), scaled(r.paper_after_value, factor), scaled(r.after_value, factor));
  }
  const durations = [];
  for (const [d, unit] of [
    [report.retrieval.times, MINUTE],
    [report.claims.turnaround, HOUR],
    [report.claims.turnaround_reviewed, DAY],
    [report.disputes.break_glass_review, DAY],
    [report.disputes.appeal_decision, DAY],
  ]) {
    durations.push(scaled(d.median, 1 / unit), scaled(d.p90, 1 / unit));
  }
  const c = report.claims;
  const claims = [c.paid_at_submission, c.paid - c.paid_at_submission, c.denied, c.appealed,
    ...c.refused_by_error.map(([, n]) => n)];
  const u = report.unauthorised;
  const access = [u.reads, u.break_glass_reads, u.blocked_recorded, u.blocked_reverted, u.succeeded, u.disputed_sessions];
  const v = report.value;
  const value = [v.printed_eta * 100, v.paper_efficiency.eta * 100, v.measured ? v.measured.eta * 100 : null,
    v.table1_saving * 100, v.cost.before, v.cost.after];
  const labels = { 'chart-table1': table1, 'chart-durations': durations, 'chart-claims': claims,
    'chart-access': access, 'chart-value': value };
  for (const id of Object.keys(labels)) labels[id] = labels[id].map(fixed).filter((x) => x !== null);
  return labels;
}

// Luminance statistics of a PNG, decoded by the browser itself in a blank page.
async function pixelStats(page, png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const { data } = ctx.getImageData(0, 0, img.width, img.height);
    let sum = 0, sq = 0;
    const colours = new Set();
    const n = data.length / 4;
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2];
      sum += y;
      sq += y * y;
      if (colours.size < 5000) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    }
    const mean = sum / n;
    return { width: img.width, height: img.height, variance: sq / n - mean * mean, colours: colours.size };
  }, png.toString('base64'));
}

async function main() {
  const [htmlPath, jsonPath, shotPath] = process.argv.slice(2);
  if (!htmlPath || !jsonPath || !shotPath) {
    console.error('usage: report_page.check.js REPORT.html REPORT.json SCREENSHOT.png');
    process.exit(2);
  }
  const report = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const failures = [];
  const check = (ok, what) => { if (!ok) failures.push(what); };
  const browser = await chromium.launch({ executablePath: process.env.MEDCHAIN_CHROMIUM || '/usr/bin/chromium', args: FLAGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    const fetched = [];
    page.on('request', (r) => { if (!/^(file|data|blob|about):/.test(r.url())) fetched.push(r.url()); });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto('file://' + path.resolve(htmlPath), { waitUntil: 'load' });
    for (const id of CHARTS) await page.waitForSelector(`#${id} .main-svg`, { timeout: 30000 });
    await page.waitForTimeout(300);
    check(fetched.length === 0, `the page fetched from the network: ${fetched.join(', ')}`);
    check(errors.length === 0, `script errors: ${errors.join('; ')}`);

    // The JSON inside the page is the report's.
    const embedded = await page.evaluate(() => JSON.parse(document.getElementById('medchain-report').textContent));
    check(JSON.stringify(embedded) === JSON.stringify(report), 'the JSON embedded in the page differs from the JSON report');

    // Charts: drawn by plotly (SVG with data traces and bars) and labelled with the JSON's numbers.
    const expected = expectedLabels(report);
    const charts = {};
    for (const id of CHARTS) {
      const seen = await page.evaluate((chart) => {
        const root = document.getElementById(chart);
        const bars = [...root.querySelectorAll('g.trace.bars g.point path')].filter((p) => (p.getAttribute('d') || '').length > 0);
        return {
          svgs: root.querySelectorAll('svg.main-svg').length,
          traces: root.querySelectorAll('g.trace.bars').length,
          bars: bars.length,
          labels: [...root.querySelectorAll('text.bartext')].map((t) => t.textContent),
          box: (({ width, height }) => ({ width, height }))(root.getBoundingClientRect()),
        };
      }, id);
      charts[id] = seen;
      check(seen.svgs > 0 && seen.traces > 0, `${id}: no plotly SVG with data traces`);
      check(seen.bars === expected[id].length, `${id}: ${seen.bars} bars drawn, the JSON has ${expected[id].length} values`);
      check(JSON.stringify(seen.labels) === JSON.stringify(expected[id]),
        `${id}: labels ${JSON.stringify(seen.labels)} differ from the JSON's ${JSON.stringify(expected[id])}`);
      const element = await page.$(`#${id}`);
      const stats = await pixelStats(page, await element.screenshot());
      charts[id].pixels = stats;
      check(stats.variance > 50 && stats.colours > 8, `${id}: its screenshot is blank (${JSON.stringify(stats)})`);
    }

    // The before/after table: every cell is the JSON's text.
    const cells = await page.evaluate(() => [...document.querySelectorAll('#kpi-table tbody tr')].map((tr) => ({
      key: tr.dataset.key,
      indicator: tr.querySelector('.indicator').textContent,
      before: tr.querySelector('.before').textContent,
      after: tr.querySelector('.after .value').textContent,
      basis: tr.querySelector('.after .badge').textContent,
      change: tr.querySelector('.change').textContent,
    })));
    check(cells.length === report.rows.length, `the table has ${cells.length} rows, the JSON ${report.rows.length}`);
    report.rows.forEach((row, i) => {
      const cell = cells[i] || {};
      for (const [field, want] of [['key', row.key], ['indicator', row.indicator.trim()], ['before', row.before],
        ['after', row.after], ['basis', row.basis], ['change', row.change]]) {
        check(cell[field] === want, `table row ${row.key}: ${field} shows ${JSON.stringify(cell[field])}, the JSON ${JSON.stringify(want)}`);
      }
    });
    const simulated = report.rows.filter((r) => r.basis === 'simulated').length;
    const badges = await page.$$eval('#kpi-table .badge', (b) => b.filter((x) => x.textContent === 'simulated').length);
    check(badges === simulated, `${badges} figures labelled simulated, the JSON has ${simulated}`);

    // Refused claims and value models.
    const refusals = await page.$$eval('#refusals tbody tr', (rows) => rows.map((r) => [r.cells[0].textContent, Number(r.cells[1].textContent)]));
    const wantRefusals = [...report.claims.refused_by_error, ...report.claims.other_refusals.map(([w, n]) => [`other call: ${w}`, n])];
    check(JSON.stringify(refusals) === JSON.stringify(wantRefusals), `refusals ${JSON.stringify(refusals)} differ from the JSON's ${JSON.stringify(wantRefusals)}`);
    const values = await page.$$eval('#value-table tr', (rows) => Object.fromEntries(rows.map((r) => [r.dataset.key, r.querySelector('.value').textContent])));
    const v = report.value;
    for (const [key, want] of [['eta-computed', `${(v.paper_efficiency.eta * 100).toFixed(1)} %`],
      ['eta-printed', `${(v.printed_eta * 100).toFixed(1)} %`],
      ['eta-measured', v.measured ? `${(v.measured.eta * 100).toFixed(1)} %` : '—'],
      ['cost-after', v.cost.after.toFixed(1)], ['cost-saving', `${(v.cost.saving_rate * 100).toFixed(1)} %`]]) {
      check(values[key] === want, `value model ${key} shows ${values[key]}, the JSON ${want}`);
    }

    // The whole page: a screenshot that is not blank.
    await page.screenshot({ path: shotPath, fullPage: true });
    const blank = await browser.newPage();
    const stats = await pixelStats(blank, fs.readFileSync(shotPath));
    check(stats.variance > 100 && stats.colours > 32, `the page screenshot is blank (${JSON.stringify(stats)})`);
    console.log(JSON.stringify({ ok: failures.length === 0, screenshot: { path: shotPath, ...stats }, charts, rows: cells.length, failures }));
  } finally {
    await browser.close();
  }
  if (failures.length) {
    for (const f of failures) console.error('FAIL: ' + f);
    process.exit(1);
  }
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
