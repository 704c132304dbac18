/**
 * A strict parser of the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format), for tests:
 * it throws, naming the line, on anything a scraper could misread — a sample before its
 * family's TYPE, HELP or TYPE given twice, a family split by another, bad metric or label
 * names, unescaped label values, a label given twice, a value that is not a float, a sample
 * name that does not belong to its family's type.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string | undefined;
  type: MetricType;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const finished = new Set<string>();
  let current: MetricFamily | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('exposition: the last line must end with a line feed');
  lines.pop();
  const family = (name: string, where: string): MetricFamily => {
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: ${JSON.stringify(name)} is not a metric name`);
    if (current?.name !== name) {
      if (finished.has(name) || families.has(name)) throw new Error(`${where}: metric family ${name} appears again after another family (its lines must be together)`);
      if (current) finished.add(current.name);
      current = { name, help: undefined, type: 'untyped', samples: [] };
      families.set(name, current);
    }
    return current;
  };
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line.slice(0, 80))})`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const comment = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!comment) return; // any other comment is allowed and ignored
      const [, keyword, name, rest = ''] = comment;
      const f = family(name!, where);
      if (keyword === 'HELP') {
        if (f.help !== undefined) throw new Error(`${where}: a second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`${where}: HELP may escape only \\\\ and \\n`);
        f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      } else {
        if (f.samples.length > 0) throw new Error(`${where}: TYPE of ${name} after its samples`);
        if ((f as { typed?: true }).typed) throw new Error(`${where}: a second TYPE for ${name}`);
        if (!TYPES.has(rest.trim() as MetricType)) throw new Error(`${where}: unknown type ${JSON.stringify(rest)}`);
        f.type = rest.trim() as MetricType;
        (f as { typed?: true }).typed = true;
      }
      return;
    }
    const sample = parseSample(line, where);
    const base = familyOf(sample.name, current);
    const f = family(base, where);
    checkSampleName(f, sample, where);
    if (f.samples.some((s) => s.name === sample.name && sameLabels(s.labels, sample.labels))) throw new Error(`${where}: the same series twice`);
    f.samples.push(sample);
  });
  for (const f of families.values()) delete (f as { typed?: true }).typed;
  return families;
}

/** A histogram's or summary's samples carry suffixes; they belong to the family being read. */
function familyOf(name: string, current: MetricFamily | undefined): string {
  if (current && (current.type === 'histogram' || current.type === 'summary')) {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      if (name === current.name + suffix) return current.name;
    }
  }
  return name;
}

function checkSampleName(f: MetricFamily, s: Sample, where: string): void {
  if (f.type === 'histogram') {
    if (s.name === `${f.name}_bucket` && s.labels['le'] === undefined) throw new Error(`${where}: a histogram bucket without le`);
    if (![`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`].includes(s.name)) throw new Error(`${where}: ${s.name} is not a sample of histogram ${f.name}`);
  } else if (f.type === 'summary') {
    if (s.name === f.name && s.labels['quantile'] === undefined) throw new Error(`${where}: a summary quantile without the quantile label`);
  } else if (s.name !== f.name) {
    throw new Error(`${where}: ${s.name} in family ${f.name}`);
  }
  if (f.type === 'counter' && s.value < 0) throw new Error(`${where}: a counter below zero`);
}

function parseSample(line: string, where: string): Sample {
  const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  if (!head) throw new Error(`${where}: expected a metric name`);
  const name = head[1]!;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const label = /^([^=\s]+)\s*=\s*"/.exec(line.slice(i));
      if (!label) throw new Error(`${where}: expected label="value" at column ${i + 1}`);
      const labelName = label[1]!;
      if (!LABEL_NAME.test(labelName) || labelName.startsWith('__')) throw new Error(`${where}: ${JSON.stringify(labelName)} is not a label name`);
      if (labelName in labels) throw new Error(`${where}: label ${labelName} twice`);
      i += label[0].length;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) throw new Error(`${where}: unterminated value of label ${labelName}`);
        i++;
        if (c === '"') break;
        if (c === '\\') {
          const escaped = line[i++];
          if (escaped === '\\') value += '\\';
          else if (escaped === '"') value += '"';
          else if (escaped === 'n') value += '\n';
          else throw new Error(`${where}: label ${labelName}: \\${escaped ?? ''} is not an escape (only \\\\, \\" and \\n)`);
        } else {
          value += c;
        }
      }
      labels[labelName] = value;
      while (line[i] === ' ') i++;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`${where}: expected , or } after label ${labelName}`);
    }
  }
  const rest = line.slice(i);
  const parts = /^ +(\S+)(?: +(-?\d+))?$/.exec(rest);
  if (!parts) throw new Error(`${where}: expected " value [timestamp]" after the name and labels, got ${JSON.stringify(rest)}`);
  return { name, labels, value: parseValue(parts[1]!, where) };
}

/**
 * Prometheus reads values with Go's strconv.ParseFloat, which takes NaN and Inf in any case
 * (prom-client writes "Nan" for a mean with no samples yet): so does this.
 */
function parseValue(text: string, where: string): number {
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf' || lower === '+infinity' || lower === 'infinity') return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  if (lower === 'nan') return NaN;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) throw new Error(`${where}: ${JSON.stringify(text)} is not a float`);
  return Number(text);
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** The value of one series (labels must match exactly); undefined when absent. */
export function sampleValue(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    const s = f.samples.find((x) => x.name === name && sameLabels(x.labels, labels));
    if (s) return s.value;
  }
  return undefined;
}

/** The sum of a family's samples whose labels include `where`. */
export function sumOf(families: Map<string, MetricFamily>, name: string, where: Record<string, string> = {}): number {
  return (families.get(name)?.samples ?? []).filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}
