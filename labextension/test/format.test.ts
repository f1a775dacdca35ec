import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import {
  alignSeries,
  Backoff,
  differs,
  formatBytes,
  formatDuration,
  formatMetric,
  formatRate,
  formatWhen,
  keyMetric,
  keyMetrics,
  metricGroups,
  pageLabel,
  runsQuery,
  smooth,
  statusClass,
  toggleOrder,
  paramColumns,
  varyingParams
} from '../src/format';

test('numbers read as cellops.display writes them in Python', () => {
  // The same cases as tests/test_display.py: one format everywhere.
  assert.equal(formatMetric(0.912345), '0.9123');
  assert.equal(formatMetric(0.972028), '0.972');
  assert.equal(formatMetric(42), '42');
  assert.equal(formatMetric(143.0), '143');
  assert.equal(formatMetric(1234.5678), '1,235');
  assert.equal(formatMetric(12345678.9), '12,345,679');
  assert.equal(formatMetric(0.00001234), '1.234e-5');
  assert.equal(formatMetric(1e20), '1.000e+20');
  assert.equal(formatMetric(-0.5), '-0.5');
  assert.equal(formatMetric('NaN'), 'NaN');
  assert.equal(formatMetric('Infinity'), '∞');
  assert.equal(formatMetric(null), '');
  assert.equal(formatMetric(undefined), '');
  // Text is never read as a number (issue #27): ids and params print as they were written.
  for (const text of ['1e10abcd', '00012345', '386e5045', '57139781', 'nan00000', 'inf00000', '00501']) {
    assert.equal(formatMetric(text), text);
  }
});

test('byte sizes are human', () => {
  assert.equal(formatBytes(812), '812 bytes');
  assert.equal(formatBytes(1), '1 byte');
  assert.equal(formatBytes(2_003_651), '2.0 MB');
  assert.equal(formatBytes(null), '');
});

test('durations read like the CLI prints them', () => {
  assert.equal(formatDuration(0.44), '440 ms');
  assert.equal(formatDuration(12.34), '12.3 s');
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

test('the narrow list shows the sorted-by metric, else the most common one', () => {
  const runs = [{ metrics: { acc: 1, f1: 2 } }, { metrics: { acc: 1 } }];
  assert.equal(keyMetric(runs, 'metrics.`f1` DESC'), 'f1');
  assert.equal(keyMetric(runs, 'metrics.f1 ASC'), 'f1');
  assert.equal(keyMetric(runs, 'attributes.start_time DESC'), 'acc');
  assert.equal(keyMetric([{ metrics: {} }], null), null);
});

test('params that vary come first; a key some runs lack is not a difference', () => {
  const runs: { params: Record<string, string> }[] = [{ params: { lr: '0.1', seed: '0' } }, { params: { lr: '0.2', seed: '0' } }, { params: {} }];
  assert.deepEqual(varyingParams(runs), { varying: ['lr'], same: ['seed'] });
  assert.equal(differs(['0.1', undefined, '0.1']), false);
  assert.equal(differs(['0.1', '0.2']), true);
  assert.equal(differs([undefined, undefined]), false);
});

test('series are aligned on the union of steps, NaN as gaps', () => {
  const [xs, a, b] = alignSeries([[{ step: 0, value: 1 }, { step: 2, value: 'NaN' }], [{ step: 1, value: 5 }]]);
  assert.deepEqual(xs, [0, 1, 2]);
  assert.deepEqual(a, [1, null, null]);
  assert.deepEqual(b, [null, 5, null]);
});

test('smoothing is exponential and keeps gaps', () => {
  assert.deepEqual(smooth([1, null, 3], 0), [1, null, 3]);
  assert.deepEqual(smooth([0, 10, null, 10], 0.5), [0, 5, null, 7.5]);
});

test('train_/val_ variants of a metric share one chart', () => {
  const groups = metricGroups(['train_loss', 'val_loss', 'accuracy', 'loss/train', 'lr']);
  assert.deepEqual(groups.get('loss'), ['loss/train', 'train_loss', 'val_loss']);
  assert.deepEqual(groups.get('accuracy'), ['accuracy']);
  assert.deepEqual(groups.get('lr'), ['lr']);
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

test('request rates read as people say them', () => {
  assert.equal(formatRate(0), '0 req/s');
  assert.equal(formatRate(null), '0 req/s');
  assert.equal(formatRate(Number.NaN), '0 req/s');
  assert.equal(formatRate(0.2), '0.2 req/s');
  assert.equal(formatRate(1.26), '1.3 req/s');
  assert.equal(formatRate(12.4), '12 req/s');
  assert.equal(formatRate(1320), '1.3k req/s');
});

test('param columns: varying first by default, the user\'s pick otherwise', () => {
  const runs = [
    { params: { lr: '0.1', seed: '1', depth: '3', model: 'rf' } },
    { params: { lr: '0.2', seed: '1', depth: '5', model: 'rf' } },
    { params: { lr: '0.3', seed: '1', depth: '5', model: 'rf' } }
  ];
  assert.deepEqual(paramColumns(runs, null), { all: ['lr', 'depth', 'model', 'seed'], shown: ['lr', 'depth'] });
  assert.deepEqual(paramColumns(runs, null, 1).shown, ['lr']);
  // Shown in the grid's order whatever order they were picked in; unknown keys ignored.
  assert.deepEqual(paramColumns(runs, new Set(['seed', 'lr', 'gone'])).shown, ['lr', 'seed']);
  assert.deepEqual(paramColumns(runs, new Set()).shown, []);
});
