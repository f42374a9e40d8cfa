// Plain-text summaries of the cache for the `softseg cache` commands.
import { table } from './tables.js';
import type { CacheInfo } from '../cache/store.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

function describeTeacher(d: Record<string, unknown> | null): string {
  if (!d) return '(no teacher.json)';
  const parts = ['kind', 'format', 'source'].map((k) => d[k]).filter((v) => v !== undefined && v !== null).map(String);
  return parts.length ? parts.join(' ') : JSON.stringify(d).slice(0, 60);
}

export function formatCacheInfo(info: CacheInfo): string {
  if (!info.teachers.length) return `${info.dir}: empty cache`;
  const rows = [['teacher', 'entries', 'size', 'B/px', 'vs f32', 'classes', 'k', 'modes', 'description']];
  for (const t of info.teachers) {
    const modes = Object.entries(t.modes).filter(([, n]) => n > 0).map(([m, n]) => `${m} ${n}`).join(', ') || '—';
    rows.push([
      t.fingerprint ? t.fingerprint.slice(0, 16) : t.key, `${t.entries}${t.unreadable ? ` (+${t.unreadable} unreadable)` : ''}`, formatBytes(t.bytes),
      t.entries ? t.bytesPerPixel.toFixed(2) : '—', t.entries ? `${t.compressionVsFloat32.toFixed(1)}×` : '—',
      t.numClasses.join(',') || '—', t.k.join(',') || '—', modes, describeTeacher(t.description),
    ]);
  }
  const lines = [table(rows, [false, true, true, true, true, true, true, false, false]), '', `${info.entries} entries, ${formatBytes(info.bytes)} in ${info.dir}`];
  if (info.staleTempFiles) lines.push(`${info.staleTempFiles} temp files of killed writers (softseg cache prune removes them)`);
  return lines.join('\n');
}
