import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import {
  Backoff,
  chartPath,
  formatDuration,
  formatMetric,
  formatWhen,
  keyMetrics,
  pageLabel,
  runsQuery,
  statusClass,
  toggleOrder
} from '../src/format';

test('metrics print compactly and keep NaN and infinities readable', () => {
  assert.equal(formatMetric(0.912345), '0.9123');
  assert.equal(formatMetric(42), '42');
  assert.equal(formatMetric(0.00001234), '1.234e-5');
  assert.equal(formatMetric(12345678.9), '1.235e+7');
  assert.equal(formatMetric('NaN'), 'NaN');
  assert.equal(formatMetric('Infinity'), '∞');
  assert.equal(formatMetric(null), '');
  assert.equal(formatMetric(undefined), '');
});

test('durations read like the CLI prints them', () => {
  assert.equal(formatDuration(0.44), '0.4 s');
  assert.equal(formatDuration(245), '4m 05s');
  assert.equal(formatDuration(7380), '2h 03m');
  assert.equal(formatDuration(null), '');
});

test('times are relative when recent and a date when old', () => {
  const now = Date.parse('2026-11-22T12:00:00Z');
  assert.equal(formatWhen('2026-11-22T11:59:50+00:00', now), 'just now');
  assert.equal(formatWhen('2026-11-22T11:50:00+00:00', now), '10 min ago');
  assert.equal(formatWhen('2026-11-22T09:00:00+00:00', now), '3 h ago');
  assert.equal(formatWhen('2026-11-01T08:30:00+00:00', now), '2026-11-01 08:30');
  assert.equal(formatWhen(null, now), '');
});

test('statuses of runs and steps map to badge styles', () => {
  assert.equal(statusClass('FINISHED'), 'ok');
  assert.equal(statusClass('ran'), 'ok');
  assert.equal(statusClass('FAILED'), 'failed');
  assert.equal(statusClass('cached'), 'cached');
  assert.equal(statusClass('not run'), 'skipped');
  assert.equal(statusClass('RUNNING'), 'running');
  assert.equal(statusClass('something new'), 'idle');
});

test('the runs query leaves out empty values and encodes the filter', () => {
  assert.equal(runsQuery({ limit: 50, offset: 0 }), 'limit=50&offset=0');
  const q = runsQuery({ experiment: 'churn', filter: " metrics.acc > 0.9 and params.m = 'rf' ", orderBy: 'metrics.acc DESC', kinds: ['run', 'notebook'], limit: 50, offset: 100 });
  const parsed = new URLSearchParams(q);
  assert.equal(parsed.get('experiment'), 'churn');
  assert.equal(parsed.get('filter'), "metrics.acc > 0.9 and params.m = 'rf'");
  assert.equal(parsed.get('order_by'), 'metrics.acc DESC');
  assert.deepEqual(parsed.getAll('kind'), ['run', 'notebook']);
  assert.equal(parsed.get('offset'), '100');
});

test('clicking a column sorts by it descending, clicking again flips it', () => {
  assert.equal(toggleOrder(null, 'metrics.acc'), 'metrics.acc DESC');
  assert.equal(toggleOrder('metrics.acc DESC', 'metrics.acc'), 'metrics.acc ASC');
  assert.equal(toggleOrder('metrics.acc ASC', 'metrics.acc'), 'metrics.acc DESC');
  assert.equal(toggleOrder('metrics.acc ASC', 'attributes.run_name'), 'attributes.run_name DESC');
});

test('key metrics are the most common ones on the page', () => {
  const runs = [{ metrics: { acc: 1, f1: 2 } }, { metrics: { acc: 1, loss: 3 } }, { metrics: { acc: 0 } }];
  assert.deepEqual(keyMetrics(runs, 2), ['acc', 'f1']);
  assert.deepEqual(keyMetrics([], 4), []);
});

test('page labels count from one', () => {
  assert.equal(pageLabel(0, 50, 1234), '1–50 of 1,234');
  assert.equal(pageLabel(1200, 34, 1234), '1,201–1,234 of 1,234');
  assert.equal(pageLabel(0, 0, 0), '0 runs');
});

test('chart paths fit the box and skip NaN points', () => {
  const d = chartPath([{ step: 0, value: 0 }, { step: 1, value: 'NaN' }, { step: 2, value: 10 }], 100, 50, 0);
  assert.equal(d, 'M0.0 50.0 L100.0 0.0');
  assert.equal(chartPath([{ step: 0, value: 'NaN' }], 100, 50), null);
  assert.equal(chartPath([{ step: 3, value: 1 }], 100, 50, 0), 'M50.0 25.0'); // one point: centred
});

test('polling backs off while nothing changes and resets on change', () => {
  const b = new Backoff(1000, 5000);
  assert.equal(b.next('same'), 2000);
  assert.equal(b.next('error'), 4000);
  assert.equal(b.next('same'), 5000);
  assert.equal(b.next('same'), 5000);
  assert.equal(b.next('changed'), 1000);
  b.next('same');
  b.reset();
  assert.equal(b.delay, 1000);
});
