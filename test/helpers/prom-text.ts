/**
 * A small strict parser of the Prometheus text exposition format (version 0.0.4): every
 * line must be a `# HELP`, a `# TYPE` or a sample `name{label="value",…} number`; a sample
 * must belong to a family announced by `# TYPE` (histogram `_bucket`/`_sum`/`_count` and
 * counter `_total` suffixes included); label values must use only the format's escapes.
 * Anything else throws with the line number.
 */
export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface Exposition { types: Map<string, string>; samples: Sample[] }

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?[0-9]+))?$`);
const LABEL_RE = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;

function parseValue(v: string, line: number): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  if (!/^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(v)) throw new Error(`line ${line}: bad value ${v}`);
  return Number(v);
}

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, i) => {
    const n = i + 1;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line);
      if (!m) throw new Error(`line ${n}: bad comment`);
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]!)) throw new Error(`line ${n}: bad type`);
        if (types.has(m[2]!)) throw new Error(`line ${n}: duplicate TYPE ${m[2]}`);
        types.set(m[2]!, m[3]!);
      }
      return;
    }
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`line ${n}: not a sample`);
    const name = m[1]!;
    const family = [name, name.replace(/_(bucket|sum|count|total)$/, '')].find((f) => types.has(f));
    if (family === undefined) throw new Error(`line ${n}: sample ${name} without a TYPE`);
    const labels: Record<string, string> = {};
    let rest = m[2] ?? '';
    while (rest !== '') {
      const l = LABEL_RE.exec(rest);
      if (!l) throw new Error(`line ${n}: bad labels`);
      if (l[1]! in labels) throw new Error(`line ${n}: duplicate label ${l[1]}`);
      labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
    }
    samples.push({ name, labels, value: parseValue(m[3]!, n) });
  });
  return { types, samples };
}

/** Sum of the samples named `name` whose labels include `match`. */
export function sumOf(e: Exposition, name: string, match: Record<string, string> = {}): number {
  return e.samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}
