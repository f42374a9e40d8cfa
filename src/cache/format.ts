/**
 * The binary format of one teacher-output cache entry (one image × one teacher), version 1.
 *
 * A teacher's per-pixel class distribution p is stored as its top-k classes and log-ratios to the top class:
 *   ids   k class ids per pixel (uint8; 255 = slot unused), sorted by probability, slot 0 = argmax
 *   codes k quantised log-ratios per pixel: slots 1..k−1 hold d_j = ln(p_j / p_1); the last code holds
 *         the residual per tail class, d_r = ln((r / (C − used)) / p_1), r = the mass outside the used slots.
 * Every d is ≤ 0, so p_1 itself needs no code: it is what makes the distribution sum to 1
 * (p_1 = 1 / (1 + Σ e^{d_j} + (C − used)·e^{d_r})). Storing ratios to the top class keeps the confidence
 * (= p_1) precise where a pseudo-label threshold needs it (1 − p_1 carries the quantisation's relative error,
 * not p_1), and tempering is exact in this form: softmax(z/T) ∝ p^{1/T} ⇒ weights e^{d/T}.
 * A slot whose ratio falls below the quantiser's range is left unused and its mass joins the residual.
 * Pseudo-only entries use the same layout with k = 1 (argmax + residual; confidence = 1/(1 + (C−1)e^{d_r})).
 *
 * File layout (little-endian):
 *   0  'SSCE'            magic
 *   4  u16 version       1
 *   6  u16 headerBytes   header length including the class maxima (multiple of 4)
 *   8  u8  modes         bit 0 soft, bit 1 pseudo
 *   9  u8  scheme        quantiser (QUANT_SCHEMES)
 *   10 u8  compression   0 none, 1 deflate, 2 brotli
 *   11 u8  k
 *   12 u16 numClasses    ≤ 255
 *   14 u16 reserved
 *   16 u32 width, 20 u32 height
 *   24 f32 range D       quantised log-ratios cover [−D, 0]
 *   28 u32 rawBytes      payload length before compression
 *   32 u32 storedBytes   payload length in the file
 *   36 u16 fingerprint length, 38 u16 image hash length, 40 u16 image name length, 42 u16 reserved
 *   44 fingerprint, image hash, image name (UTF-8), zero padding to a multiple of 4
 *      f32 × C          per-class maximum probability over the image (exact, for active classes at any threshold)
 *      f32 × C          tail prior π (mean 1): a pixel's residual r goes to its tail classes c ∝ π_c (all 1 = evenly)
 *   headerBytes         payload: ids planes (k × H·W bytes), then code planes (k × H·W, each row delta-coded
 *                       from its left neighbour; uint16: all high bytes, then all low bytes)
 *   end − 4             u32 CRC-32 of everything before it
 */
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { SoftsegError } from '../errors.js';

export const ENTRY_MAGIC = 'SSCE';
export const ENTRY_VERSION = 1;
/** The id of an unused top-k slot. */
export const UNUSED_SLOT = 255;
export const MAX_CLASSES = 255;
const FIXED_HEADER = 44;
const MAX_NAME_BYTES = 1024;

export type CacheMode = 'soft' | 'pseudo' | 'both';
export type QuantScheme = 'log8' | 'sqrt8' | 'log16';
export type Compression = 'none' | 'deflate' | 'brotli';

/**
 * Quantisers of a log-ratio d ∈ [−D, 0] (the last code of each means "zero", below the range):
 * - log8:  uint8, uniform in d (step D/254);
 * - sqrt8: uint8, uniform in √(−d) (fine steps near 0 where KL at T = 1 lives, coarse far out where only high
 *          temperatures look, and there the error is divided by T);
 * - log16: uint16, uniform in d (step D/65534).
 */
export const QUANT_SCHEMES: Record<QuantScheme, { id: number; bytes: 1 | 2; defaultRange: number }> = {
  log8: { id: 1, bytes: 1, defaultRange: 16 },
  sqrt8: { id: 2, bytes: 1, defaultRange: 32 },
  log16: { id: 3, bytes: 2, defaultRange: 40 },
};
const COMPRESSIONS: Compression[] = ['none', 'deflate', 'brotli'];

/** The defaults chosen by measurement (test/cache/measure.ts; figures in the issue note). */
export const DEFAULT_K = 4;
export const DEFAULT_SCHEME: QuantScheme = 'sqrt8';
export const DEFAULT_COMPRESSION: Compression = 'deflate';
export const DEFAULT_TAIL_PRIOR = true;

/** A cache entry that fails its checksum, is truncated or does not parse. Never used; relabel it. */
export class CorruptEntryError extends SoftsegError {
  readonly entryPath: string;
  readonly imageName?: string;
  readonly reason: string;
  constructor(entryPath: string, reason: string, imageName?: string) {
    super(`corrupt cache entry${imageName ? ` for image ${imageName}` : ''}: ${reason}`, {
      file: entryPath,
      hint: 'relabel the image (`softseg label` overwrites entries that fail verification) or remove the file',
    });
    this.name = 'CorruptEntryError';
    this.entryPath = entryPath;
    this.imageName = imageName;
    this.reason = reason;
  }
}

export interface EntryHeader {
  version: number;
  modes: { soft: boolean; pseudo: boolean };
  scheme: QuantScheme;
  compression: Compression;
  k: number;
  numClasses: number;
  width: number;
  height: number;
  range: number;
  rawBytes: number;
  storedBytes: number;
  fingerprint: string;
  imageHash: string;
  imageName: string;
  headerBytes: number;
  /** Per-class maximum probability over the image. */
  classMax: Float32Array;
  /** Relative weights by which a pixel's residual is spread over its tail classes (all 1: evenly). */
  tailPrior: Float32Array;
}

export interface EncodeOptions {
  width: number;
  height: number;
  numClasses: number;
  /** Top-k slots for soft mode (pseudo-only entries always use 1). Default DEFAULT_K, capped at C. */
  k?: number;
  mode: CacheMode;
  fingerprint: string;
  imageHash: string;
  imageName?: string;
  scheme?: QuantScheme;
  /** Log-ratio range D; default per scheme. */
  range?: number;
  compression?: Compression;
  /** Spread the residual by a per-image class prior instead of evenly (DEFAULT_TAIL_PRIOR). */
  tailPrior?: boolean;
}

/** The quantised planes of an entry, before compression (or after decompression). */
export interface EntryPlanes {
  ids: Uint8Array;
  codes: Uint8Array | Uint16Array;
}

// ---------------------------------------------------------------------------------------------------------
// Quantisation

function levels(scheme: QuantScheme): number {
  return QUANT_SCHEMES[scheme].bytes === 1 ? 256 : 65536;
}

/** The code of log-ratio d (≤ 0) under `scheme` over [−range, 0]; the last code is "zero". */
export function quantize(d: number, scheme: QuantScheme, range: number): number {
  const zero = levels(scheme) - 1;
  const top = zero - 1;
  if (!(d >= -range)) return d > -range - (range / top) / 2 ? top : zero; // NaN and −∞ → zero
  if (d >= 0) return 0;
  const x = scheme === 'sqrt8' ? Math.sqrt(-d / range) : -d / range;
  return Math.round(x * top);
}

/** The log-ratio of each code (−Infinity for the zero code). */
export function codeLogRatios(scheme: QuantScheme, range: number): Float64Array {
  const n = levels(scheme);
  const top = n - 2;
  const out = new Float64Array(n);
  for (let c = 0; c <= top; c++) {
    const x = c / top;
    out[c] = -range * (scheme === 'sqrt8' ? x * x : x);
  }
  out[n - 1] = -Infinity;
  return out;
}

const weightTables = new Map<string, Float64Array>();
/** e^{d(code)/T} for every code (0 for the zero code), cached per scheme, range and temperature. */
function weightTable(scheme: QuantScheme, range: number, temperature: number): Float64Array {
  const key = `${scheme}:${range}:${temperature}`;
  let t = weightTables.get(key);
  if (!t) {
    const d = codeLogRatios(scheme, range);
    t = new Float64Array(d.length);
    for (let c = 0; c < d.length; c++) t[c] = Math.exp(d[c]! / temperature);
    if (weightTables.size > 64) weightTables.clear();
    weightTables.set(key, t);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

/**
 * Quantises probabilities `probs` ([H, W, C] HWC, each pixel a distribution) into top-k planes.
 * Pixels need not sum to exactly 1; they are taken as they are (the format stores ratios).
 * With `tailPrior`, the residual is later spread over a pixel's tail classes in proportion to a per-image prior
 * π (estimated here: the mean tail share of each class where it is in the tail); without, π = 1 (even spread).
 */
export function quantizePlanes(
  probs: Float32Array, numPixels: number, numClasses: number, k: number, scheme: QuantScheme, range: number, tailPrior = false,
): EntryPlanes & { prior: Float32Array } {
  const C = numClasses;
  const ids = new Uint8Array(k * numPixels).fill(UNUSED_SLOT);
  const codes = QUANT_SCHEMES[scheme].bytes === 1 ? new Uint8Array(k * numPixels) : new Uint16Array(k * numPixels);
  const zero = levels(scheme) - 1;
  const chosen = new Int32Array(k);
  const taken = new Uint8Array(C);
  const tailMass = new Float64Array(numPixels);
  const logTop = new Float64Array(numPixels);
  const usedOf = new Uint8Array(numPixels);
  const shareSum = new Float64Array(C);
  const shareCount = new Float64Array(C);
  for (let p = 0; p < numPixels; p++) {
    const base = p * C;
    let total = 0;
    for (let c = 0; c < C; c++) total += probs[base + c]!;
    if (!(total > 0) || !Number.isFinite(total)) {
      throw new SoftsegError(`pixel ${p} has no valid probability distribution (sum ${total})`, { hint: 'the teacher must output finite, non-negative class probabilities' });
    }
    // top-k by repeated selection (the lowest class id wins ties)
    taken.fill(0);
    for (let j = 0; j < k; j++) {
      let best = -1;
      let bestV = -1;
      for (let c = 0; c < C; c++) {
        const v = probs[base + c]!;
        if (!taken[c] && v > bestV) { bestV = v; best = c; }
      }
      chosen[j] = best;
      taken[best] = 1;
    }
    const lp1 = Math.log(probs[base + chosen[0]!]!);
    let used = 1;
    ids[p] = chosen[0]!;
    for (let j = 1; j < k; j++) {
      const q = quantize(Math.log(probs[base + chosen[j]!]!) - lp1, scheme, range);
      if (q === zero) break; // this slot and all smaller ones join the residual
      ids[j * numPixels + p] = chosen[j]!;
      codes[(j - 1) * numPixels + p] = q;
      used++;
    }
    taken.fill(0);
    for (let j = 0; j < used; j++) taken[chosen[j]!] = 1;
    let r = 0;
    for (let c = 0; c < C; c++) if (!taken[c]) r += probs[base + c]!;
    tailMass[p] = r;
    logTop[p] = lp1;
    usedOf[p] = used;
    if (tailPrior && r > 0) {
      const scale = (C - used) / r;
      for (let c = 0; c < C; c++) if (!taken[c]) { shareSum[c] += probs[base + c]! * scale; shareCount[c]++; }
    }
  }
  // the prior: mean tail share per class (1 = an even share), normalised to mean 1, floored
  const prior = new Float32Array(C).fill(1);
  if (tailPrior) {
    let m = 0;
    for (let c = 0; c < C; c++) { prior[c] = shareCount[c]! > 0 ? shareSum[c]! / shareCount[c]! : 1; m += prior[c]!; }
    for (let c = 0; c < C; c++) prior[c] = Math.max(1e-6, (prior[c]! * C) / m);
  }
  let priorTotal = 0;
  for (let c = 0; c < C; c++) priorTotal += prior[c]!;
  // residual codes: d_r = ln(r / (p_1 · Π_tail)), Π_tail = Σ of the prior over the pixel's tail classes
  for (let p = 0; p < numPixels; p++) {
    const used = usedOf[p]!;
    const r = tailMass[p]!;
    let code = zero;
    if (used < C && r > 0) {
      let pt = priorTotal;
      for (let j = 0; j < used; j++) pt -= prior[ids[j * numPixels + p]!]!;
      // a positive tail below the range is stored at the range's floor, never as zero (no infinite KL)
      code = Math.min(quantize(Math.log(r / Math.max(pt, 1e-30)) - logTop[p]!, scheme, range), zero - 1);
    }
    codes[(k - 1) * numPixels + p] = code;
  }
  return { ids, codes, prior };
}

/**
 * Serialises the planes: ids as they are, codes row-wise delta-coded (x − left neighbour, mod 2^bits; teacher
 * outputs are smooth, so deltas are mostly 0 / ±1 and compress far better), uint16 codes split into a
 * high-byte and a low-byte plane.
 */
function planesToBytes(planes: EntryPlanes, scheme: QuantScheme, width: number): Uint8Array {
  const { ids, codes } = planes;
  const n = codes.length;
  const two = QUANT_SCHEMES[scheme].bytes === 2;
  const out = new Uint8Array(ids.length + (two ? 2 : 1) * n);
  out.set(ids, 0);
  const o = ids.length;
  for (let i = 0; i < n; i++) {
    const d = i % width === 0 ? codes[i]! : codes[i]! - codes[i - 1]!;
    if (two) {
      const v = d & 0xffff;
      out[o + i] = v >>> 8;
      out[o + n + i] = v & 0xff;
    } else {
      out[o + i] = d & 0xff;
    }
  }
  return out;
}

function bytesToPlanes(raw: Uint8Array, numPixels: number, k: number, scheme: QuantScheme, width: number): EntryPlanes {
  const n = k * numPixels;
  const ids = raw.subarray(0, n);
  if (QUANT_SCHEMES[scheme].bytes === 1) {
    const codes = new Uint8Array(n);
    for (let i = 0; i < n; i++) codes[i] = i % width === 0 ? raw[n + i]! : (codes[i - 1]! + raw[n + i]!) & 0xff;
    return { ids, codes };
  }
  const codes = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const d = (raw[n + i]! << 8) | raw[2 * n + i]!;
    codes[i] = i % width === 0 ? d : (codes[i - 1]! + d) & 0xffff;
  }
  return { ids, codes };
}

const deflateAsync = promisify(zlib.deflate);
const inflateAsync = promisify(zlib.inflate);
const brotliCompressAsync = promisify(zlib.brotliCompress);
const brotliDecompressAsync = promisify(zlib.brotliDecompress);

async function compress(raw: Uint8Array, how: Compression): Promise<Uint8Array> {
  if (how === 'none') return raw;
  // Level 6: the same size as level 9 on these planes at half the time (bench:label).
  if (how === 'deflate') return deflateAsync(raw, { level: 6 });
  return brotliCompressAsync(raw, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
  });
}

async function decompress(stored: Uint8Array, how: Compression, rawBytes: number): Promise<Uint8Array> {
  if (how === 'none') return stored;
    // one output chunk for the whole payload: 5-20× faster than zlib's default 16 KiB chunks
  const chunkSize = Math.max(1024, rawBytes + 64);
  if (how === 'deflate') return inflateAsync(stored, { maxOutputLength: rawBytes + 1, chunkSize });
  return brotliDecompressAsync(stored, { maxOutputLength: rawBytes + 1, chunkSize });
}

/** Per-class maximum of `probs` over all pixels. */
export function classMaxima(probs: Float32Array, numPixels: number, numClasses: number): Float32Array {
  const out = new Float32Array(numClasses);
  for (let p = 0; p < numPixels; p++) {
    const base = p * numClasses;
    for (let c = 0; c < numClasses; c++) {
      const v = probs[base + c]!;
      if (v > out[c]!) out[c] = v;
    }
  }
  return out;
}

/** Encodes an entry: [H, W, C] probabilities → the bytes of an entry file. */
export async function encodeEntry(probs: Float32Array, options: EncodeOptions): Promise<Uint8Array> {
  const { width, height, numClasses: C, mode } = options;
  const scheme = options.scheme ?? DEFAULT_SCHEME;
  const compression = options.compression ?? DEFAULT_COMPRESSION;
  const range = options.range ?? QUANT_SCHEMES[scheme].defaultRange;
  if (!QUANT_SCHEMES[scheme]) throw new SoftsegError(`unknown quantisation scheme ${scheme}`, { hint: `use one of ${Object.keys(QUANT_SCHEMES).join(', ')}` });
  if (!(Number.isInteger(C) && C >= 1 && C <= MAX_CLASSES)) throw new SoftsegError(`numClasses must be 1..${MAX_CLASSES} (got ${C})`);
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new SoftsegError(`bad entry size ${width}×${height}`);
  if (probs.length !== width * height * C) {
    throw new SoftsegError(`probabilities have ${probs.length} values, expected ${height}×${width}×${C} = ${width * height * C} (HWC)`);
  }
  if (!(range > 0 && Number.isFinite(range))) throw new SoftsegError(`quantisation range must be positive (got ${range})`);
  const soft = mode === 'soft' || mode === 'both';
  const pseudo = mode === 'pseudo' || mode === 'both';
  if (!soft && !pseudo) throw new SoftsegError(`mode must be soft, pseudo or both (got ${String(mode)})`);
  const kReq = soft ? options.k ?? DEFAULT_K : 1;
  if (!(Number.isInteger(kReq) && kReq >= 1)) throw new SoftsegError(`k must be a positive integer (got ${kReq})`);
  const k = Math.min(kReq, C);
  const n = width * height;
  const planes = quantizePlanes(probs, n, C, k, scheme, range, options.tailPrior ?? DEFAULT_TAIL_PRIOR);
  const raw = planesToBytes(planes, scheme, width);
  const stored = await compress(raw, compression);
  const classMax = classMaxima(probs, n, C);

  const enc = new TextEncoder();
  const fp = enc.encode(options.fingerprint);
  const hash = enc.encode(options.imageHash);
  let name = enc.encode(options.imageName ?? '');
  if (name.length > MAX_NAME_BYTES) name = enc.encode(`…${(options.imageName ?? '').slice(-300)}`);
  if (fp.length > 4096 || hash.length > 4096) throw new SoftsegError('fingerprint or image hash too long (max 4096 bytes)');
  const varBytes = fp.length + hash.length + name.length;
  const classOffset = FIXED_HEADER + Math.ceil(varBytes / 4) * 4;
  const headerBytes = classOffset + 8 * C;
  const total = headerBytes + stored.length + 4;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(enc.encode(ENTRY_MAGIC), 0);
  dv.setUint16(4, ENTRY_VERSION, true);
  dv.setUint16(6, headerBytes, true);
  dv.setUint8(8, (soft ? 1 : 0) | (pseudo ? 2 : 0));
  dv.setUint8(9, QUANT_SCHEMES[scheme].id);
  dv.setUint8(10, COMPRESSIONS.indexOf(compression));
  dv.setUint8(11, k);
  dv.setUint16(12, C, true);
  dv.setUint32(16, width, true);
  dv.setUint32(20, height, true);
  dv.setFloat32(24, range, true);
  dv.setUint32(28, raw.length, true);
  dv.setUint32(32, stored.length, true);
  dv.setUint16(36, fp.length, true);
  dv.setUint16(38, hash.length, true);
  dv.setUint16(40, name.length, true);
  out.set(fp, FIXED_HEADER);
  out.set(hash, FIXED_HEADER + fp.length);
  out.set(name, FIXED_HEADER + fp.length + hash.length);
  for (let c = 0; c < C; c++) {
    dv.setFloat32(classOffset + 4 * c, classMax[c]!, true);
    dv.setFloat32(classOffset + 4 * (C + c), planes.prior[c]!, true);
  }
  out.set(stored, headerBytes);
  dv.setUint32(total - 4, crc32(out.subarray(0, total - 4)), true);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Decoding

/**
 * Parses the header from the first bytes of an entry (at least the header; the whole file is fine).
 * `fileSize`, when given, is checked against the lengths the header declares (truncation).
 * Does not verify the checksum: see verifyEntryBytes.
 */
export function parseHeader(bytes: Uint8Array, path = '<entry>', fileSize?: number): EntryHeader {
  const bad = (reason: string, name?: string): never => { throw new CorruptEntryError(path, reason, name); };
  if (bytes.length < FIXED_HEADER) bad(`file too short (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = String.fromCharCode(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
  if (magic !== ENTRY_MAGIC) bad('not a softseg cache entry (bad magic)');
  const version = dv.getUint16(4, true);
  if (version !== ENTRY_VERSION) {
    throw new SoftsegError(`cache entry format version ${version} is not supported (this softseg reads version ${ENTRY_VERSION})`, {
      file: path, hint: 'relabel with this softseg version or use the softseg that wrote the cache',
    });
  }
  const headerBytes = dv.getUint16(6, true);
  const fpLen = dv.getUint16(36, true), hashLen = dv.getUint16(38, true), nameLen = dv.getUint16(40, true);
  const dec = new TextDecoder();
  const varEnd = FIXED_HEADER + fpLen + hashLen + nameLen;
  const imageName = varEnd <= bytes.length ? dec.decode(bytes.subarray(FIXED_HEADER + fpLen + hashLen, varEnd)) : undefined;
  if (bytes.length < headerBytes || varEnd > headerBytes) bad(`header truncated or inconsistent (${bytes.length} bytes, header ${headerBytes})`, imageName);
  const modesBits = dv.getUint8(8);
  const schemeId = dv.getUint8(9);
  const scheme = (Object.keys(QUANT_SCHEMES) as QuantScheme[]).find((s) => QUANT_SCHEMES[s].id === schemeId);
  const compression = COMPRESSIONS[dv.getUint8(10)];
  const k = dv.getUint8(11);
  const numClasses = dv.getUint16(12, true);
  const width = dv.getUint32(16, true), height = dv.getUint32(20, true);
  const range = dv.getFloat32(24, true);
  const rawBytes = dv.getUint32(28, true), storedBytes = dv.getUint32(32, true);
  if (!scheme) bad(`unknown quantisation scheme ${schemeId}`, imageName);
  if (!compression) bad(`unknown compression ${dv.getUint8(10)}`, imageName);
  if ((modesBits & 3) === 0 || k < 1 || k > numClasses || numClasses > MAX_CLASSES || width === 0 || height === 0 || !(range > 0)) {
    bad('header fields out of range', imageName);
  }
  const classOffset = FIXED_HEADER + Math.ceil((fpLen + hashLen + nameLen) / 4) * 4;
  if (classOffset + 8 * numClasses !== headerBytes) bad('header length does not match its fields', imageName);
  const expectRaw = k * width * height * (1 + QUANT_SCHEMES[scheme!].bytes);
  if (rawBytes !== expectRaw) bad(`payload length ${rawBytes} does not match ${width}×${height}, k ${k}`, imageName);
  if (fileSize !== undefined && fileSize !== headerBytes + storedBytes + 4) {
    bad(`${fileSize < headerBytes + storedBytes + 4 ? 'truncated' : 'trailing bytes'}: ${fileSize} bytes, header declares ${headerBytes + storedBytes + 4}`, imageName);
  }
  const classMax = new Float32Array(numClasses);
  const tailPrior = new Float32Array(numClasses);
  for (let c = 0; c < numClasses; c++) {
    classMax[c] = dv.getFloat32(classOffset + 4 * c, true);
    tailPrior[c] = dv.getFloat32(classOffset + 4 * (numClasses + c), true);
    if (!(tailPrior[c]! > 0 && Number.isFinite(tailPrior[c]!))) bad('tail prior out of range', imageName);
  }
  return {
    version, modes: { soft: (modesBits & 1) !== 0, pseudo: (modesBits & 2) !== 0 }, scheme: scheme!, compression: compression!, k, numClasses,
    width, height, range, rawBytes, storedBytes,
    fingerprint: dec.decode(bytes.subarray(FIXED_HEADER, FIXED_HEADER + fpLen)),
    imageHash: dec.decode(bytes.subarray(FIXED_HEADER + fpLen, FIXED_HEADER + fpLen + hashLen)),
    imageName: imageName ?? '', headerBytes, classMax, tailPrior,
  };
}

/** Parses the header and checks length and CRC of a whole entry file. Throws CorruptEntryError. */
export function verifyEntryBytes(bytes: Uint8Array, path = '<entry>'): EntryHeader {
  const header = parseHeader(bytes, path, bytes.length);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const want = dv.getUint32(bytes.length - 4, true);
  const got = crc32(bytes.subarray(0, bytes.length - 4));
  if (want !== got) throw new CorruptEntryError(path, `checksum mismatch (stored ${hex8(want)}, computed ${hex8(got)})`, header.imageName);
  return header;
}

export interface DecodedEntry {
  header: EntryHeader;
  planes: EntryPlanes;
}

/** Verifies and decompresses a whole entry file. Throws CorruptEntryError. */
export async function decodeEntry(bytes: Uint8Array, path = '<entry>'): Promise<DecodedEntry> {
  const header = verifyEntryBytes(bytes, path);
  const stored = bytes.subarray(header.headerBytes, header.headerBytes + header.storedBytes);
  let raw: Uint8Array;
  try {
    raw = await decompress(stored, header.compression, header.rawBytes);
  } catch (err) {
    throw new CorruptEntryError(path, `payload does not decompress (${(err as Error).message})`, header.imageName);
  }
  if (raw.length !== header.rawBytes) throw new CorruptEntryError(path, `payload decompresses to ${raw.length} bytes, expected ${header.rawBytes}`, header.imageName);
  return { header, planes: bytesToPlanes(raw, header.width * header.height, header.k, header.scheme, header.width) };
}

// ---------------------------------------------------------------------------------------------------------
// Reconstruction

/**
 * Soft labels at temperature T, [H, W, C] HWC: the top-k probabilities raised to 1/T, the residual spread over
 * the remaining classes (evenly, r/(C − used) each, or by the entry's tail prior, r·π_c/Σ_tail π), each share
 * also raised to 1/T, renormalised per pixel.
 * At T = 1 this is the stored distribution; for T ≠ 1 it equals softmax(ln p / T) of the stored one.
 */
export function reconstructSoft(entry: DecodedEntry, temperature = 1, out?: Float32Array): Float32Array {
  const { header, planes } = entry;
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new SoftsegError(`temperature must be positive (got ${temperature})`);
  const C = header.numClasses, k = header.k, n = header.width * header.height;
  const res = out ?? new Float32Array(n * C);
  if (res.length !== n * C) throw new SoftsegError(`output buffer has ${res.length} values, expected ${n * C}`);
  const w = weightTable(header.scheme, header.range, temperature);
  const prior = header.tailPrior;
  const priorT = new Float64Array(C);
  let priorTotal = 0;
  let even = true;
  for (let c = 0; c < C; c++) {
    priorT[c] = temperature === 1 ? prior[c]! : Math.pow(prior[c]!, 1 / temperature);
    priorTotal += priorT[c]!;
    if (prior[c] !== 1) even = false;
  }
  const { ids, codes } = planes;
  const rCode = (k - 1) * n;
  for (let p = 0; p < n; p++) {
    let used = 1;
    let s = 1;
    let tailPrior = priorTotal - priorT[ids[p]!]!;
    for (let j = 1; j < k; j++) {
      const id = ids[j * n + p]!;
      if (id === UNUSED_SLOT) break;
      s += w[codes[(j - 1) * n + p]!]!;
      tailPrior -= priorT[id]!;
      used++;
    }
    const wr = used < C ? w[codes[rCode + p]!]! : 0;
    s += wr * (even ? C - used : tailPrior);
    const inv = 1 / s;
    const base = p * C;
    const tail = wr * inv;
    if (even) for (let c = 0; c < C; c++) res[base + c] = tail;
    else for (let c = 0; c < C; c++) res[base + c] = tail * priorT[c]!;
    res[base + ids[p]!] = inv;
    for (let j = 1; j < used; j++) res[base + ids[j * n + p]!] = w[codes[(j - 1) * n + p]!]! * inv;
  }
  return res;
}

/** The confidence map (max probability per pixel at T = 1), [H, W]. */
export function confidenceMap(entry: DecodedEntry): Float32Array {
  const { header, planes } = entry;
  const C = header.numClasses, k = header.k, n = header.width * header.height;
  const w = weightTable(header.scheme, header.range, 1);
  const prior = header.tailPrior;
  let priorTotal = 0;
  for (let c = 0; c < C; c++) priorTotal += prior[c]!;
  const out = new Float32Array(n);
  const { ids, codes } = planes;
  for (let p = 0; p < n; p++) {
    let used = 1;
    let s = 1;
    let tailPrior = priorTotal - prior[ids[p]!]!;
    for (let j = 1; j < k; j++) {
      const id = ids[j * n + p]!;
      if (id === UNUSED_SLOT) break;
      s += w[codes[(j - 1) * n + p]!]!;
      tailPrior -= prior[id]!;
      used++;
    }
    if (used < C) s += tailPrior * w[codes[(k - 1) * n + p]!]!;
    out[p] = 1 / s;
  }
  return out;
}

/** Hard labels (argmax) and confidence; pixels with confidence < threshold get `ignoreIndex`. */
export function reconstructPseudo(entry: DecodedEntry, threshold = 0, ignoreIndex = 255): { labels: Uint8Array; confidence: Float32Array } {
  const n = entry.header.width * entry.header.height;
  const confidence = confidenceMap(entry);
  const labels = new Uint8Array(n);
  const ids = entry.planes.ids;
  for (let p = 0; p < n; p++) labels[p] = confidence[p]! < threshold ? ignoreIndex : ids[p]!;
  return { labels, confidence };
}

/** Classes whose maximum probability over the image exceeds `threshold` (method.md §5.1 active classes). */
export function activeClassesOf(classMax: Float32Array, threshold = 0.01): number[] {
  const out: number[] = [];
  for (let c = 0; c < classMax.length; c++) if (classMax[c]! > threshold) out.push(c);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// CRC-32 (zlib.crc32 from Node 20.15 / 22.2; a table fallback before that)

let crcTable: Uint32Array | null = null;
function crc32Js(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let j = 0; j < 8; j++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const nativeCrc = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
export function crc32(data: Uint8Array): number {
  return nativeCrc ? nativeCrc(data) >>> 0 : crc32Js(data);
}
export { crc32Js as _crc32Js };

function hex8(v: number): string {
  return v.toString(16).padStart(8, '0');
}
