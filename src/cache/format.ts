/**
 * The binary format of one teacher-output cache entry (one image × one teacher), version 2 (version 1 is read).
 *
 * A teacher's per-pixel class distribution p is stored as its top-k classes and log-ratios to the top class:
 *   ids   k class ids per pixel (uint8; 255 = slot unused), sorted by probability, slot 0 = argmax
 *   codes k quantised log-ratios per pixel: slots 1..k−1 hold d_j = ln(p_j / p_1); the last code holds
 *         the residual, d_r = ln(r / (p_1 · S)), r = the mass outside the used slots, S = Σ of the pixel's tail
 *         shares under the entry's tail model (tail-model.ts: one image-wide shape, or a low-rank model of the
 *         log-probabilities with a few coefficients per 2×2 block).
 * Every d is ≤ 0, so p_1 itself needs no code: it is what makes the distribution sum to 1
 * (p_1 = 1 / (1 + Σ e^{d_j} + e^{d_r}·S)). Storing ratios to the top class keeps the confidence
 * (= p_1) precise where a pseudo-label threshold needs it (1 − p_1 carries the quantisation's relative error,
 * not p_1), and tempering is exact in this form: softmax(z/T) ∝ p^{1/T} ⇒ weights e^{d/T}, shares^{1/T}.
 * A slot whose ratio falls below the quantiser's range is left unused and its mass joins the residual.
 * Pseudo-only entries use the same layout with k = 1 and the image-wide tail shape.
 *
 * File layout (little-endian):
 *   0  'SSCE'            magic
 *   4  u16 version       2
 *   6  u16 headerBytes   header length including the float tables below (multiple of 4)
 *   8  u8  modes         bit 0 soft, bit 1 pseudo
 *   9  u8  scheme        quantiser (QUANT_SCHEMES)
 *   10 u8  compression   0 none, 1 deflate, 2 brotli
 *   11 u8  k
 *   12 u16 numClasses    ≤ 255
 *   14 u8  tail rank m   (version 1: 0)
 *   15 u8  tail grid     pixels per tail coefficient along each axis (version 1: 0)
 *   16 u32 width, 20 u32 height
 *   24 f32 range D       quantised log-ratios cover [−D, 0]
 *   28 u32 rawBytes      payload length before compression
 *   32 u32 storedBytes   payload length in the file
 *   36 u16 fingerprint length, 38 u16 image hash length, 40 u16 image name length, 42 u16 reserved
 *   44 fingerprint, image hash, image name (UTF-8), zero padding to a multiple of 4
 *      f32 × C          per-class maximum probability over the image (exact, for active classes at any threshold)
 *      f32 × C          tail base ℓ₀ (version 1: the image-wide shape π itself, not its log)
 *      f32 × m·C        tail basis V (row j = component j)
 *      f32 × m, f32 × m coefficient offsets and steps (u = offset + step · code)
 *   headerBytes         payload: ids planes (k × H·W bytes), code planes (k × H·W, each row delta-coded from its
 *                       left neighbour; uint16: all high bytes, then all low bytes), then the tail coefficient
 *                       planes (m × ⌈H/grid⌉·⌈W/grid⌉ bytes, rows delta-coded)
 *   end − 4             u32 CRC-32 of everything before it
 */
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import { SoftsegError } from '../errors.js';
import { TailShares, evenTail, fitTailModel, gridSize, type TailModel, type TopK } from './tail-model.js';

const ENTRY_MAGIC = 'SSCE';
export const ENTRY_VERSION = 2;
/** The id of an unused top-k slot. */
const UNUSED_SLOT = 255;
const MAX_CLASSES = 255;
const FIXED_HEADER = 44;
/** Floats after the names: class maxima, tail base, basis, coefficient offsets and steps. */
const tailFloats = (C: number, rank: number): number => 2 * C + rank * C + 2 * rank;
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
/**
 * Brotli at quality 2: on the planes of a trained 21-class teacher it is 1–2% larger than deflate level 6 but
 * 4–6× faster to write (128²: 1.3 vs 8 ms per entry; 64²: 0.44 vs 1.45), and 0.5 ms to read at 128².
 */
export const DEFAULT_COMPRESSION: Compression = 'brotli';

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
  /** How a pixel's residual is spread over its tail classes. */
  tail: TailModel;
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
  /** The tail model (default: low rank, chosen per image for DEFAULT_TAIL_KL_TARGET). */
  tail?: TailOptions;
}

/** The quantised planes of an entry, before compression (or after decompression). */
interface EntryPlanes {
  ids: Uint8Array;
  codes: Uint8Array | Uint16Array;
  /** Tail-model coefficient codes, [rank, H·W] (empty at rank 0). */
  coefs: Uint8Array;
}

/** How the residual is spread over the tail classes (tail-model.ts). */
export interface TailOptions {
  /**
   * 'lowrank' (default): the image-wide shape, or the smallest principal-component rank whose KL on a pixel
   * sample meets `klTarget` (else comes within 10% of the best rank's); 'prior': the image-wide shape only;
   * 'even': r / (C − used) each.
   */
  model?: 'lowrank' | 'prior' | 'even';
  /** Mean KL (nats/pixel, T = 1) the tail may add (default DEFAULT_TAIL_KL_TARGET). */
  klTarget?: number;
  /** Largest rank (default DEFAULT_MAX_TAIL_RANK). */
  maxRank?: number;
  /** Pixels per tail coefficient along each axis (default DEFAULT_TAIL_GRID). */
  grid?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Quantisation

function levels(scheme: QuantScheme): number {
  return QUANT_SCHEMES[scheme].bytes === 1 ? 256 : 65536;
}

/** The code of log-ratio d (≤ 0) under `scheme` over [−range, 0]; the last code is "zero". */
function quantize(d: number, scheme: QuantScheme, range: number): number {
  const zero = levels(scheme) - 1;
  const top = zero - 1;
  if (!(d >= -range)) return d > -range - (range / top) / 2 ? top : zero; // NaN and −∞ → zero
  if (d >= 0) return 0;
  const x = scheme === 'sqrt8' ? Math.sqrt(-d / range) : -d / range;
  return Math.round(x * top);
}

/** The log-ratio of each code (−Infinity for the zero code). */
function codeLogRatios(scheme: QuantScheme, range: number): Float64Array {
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
 * Quantises probabilities `probs` ([H, W, C] HWC, each pixel a distribution) into top-k planes and fits the
 * tail model (tail-model.ts) that spreads each pixel's residual over its tail classes.
 * Pixels need not sum to exactly 1; they are taken as they are (the format stores ratios).
 * One pass over the classes per pixel: its sum, the image's class maxima and the top k (insertion).
 */
function quantizePlanes(
  probs: Float32Array, width: number, height: number, numClasses: number, k: number, scheme: QuantScheme, range: number,
  tail: TailOptions = {},
): EntryPlanes & { tail: TailModel; classMax: Float32Array } {
  const C = numClasses, n = width * height;
  const ids = new Uint8Array(k * n).fill(UNUSED_SLOT);
  const codes = QUANT_SCHEMES[scheme].bytes === 1 ? new Uint8Array(k * n) : new Uint16Array(k * n);
  const zero = levels(scheme) - 1;
  const classMax = new Float32Array(C);
  const topV = new Float64Array(k);
  const topC = new Int32Array(k);
  const tailMass = new Float64Array(n);
  const logTop = new Float64Array(n);
  const used = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    const base = p * C;
    let total = 0, filled = 0;
    for (let c = 0; c < C; c++) {
      const v = probs[base + c]!;
      total += v;
      if (v > classMax[c]!) classMax[c] = v;
      // insertion into the sorted top k; a later equal value stays behind (the lowest class id wins ties)
      if (filled < k || v > topV[k - 1]!) {
        let j = filled < k ? filled++ : k - 1;
        while (j > 0 && v > topV[j - 1]!) { topV[j] = topV[j - 1]!; topC[j] = topC[j - 1]!; j--; }
        topV[j] = v;
        topC[j] = c;
      }
    }
    if (!(total > 0) || !Number.isFinite(total)) {
      throw new SoftsegError(`pixel ${p} has no valid probability distribution (sum ${total})`, { hint: 'the teacher must output finite, non-negative class probabilities' });
    }
    const lp1 = Math.log(topV[0]!);
    let u = 1, kept = topV[0]!;
    ids[p] = topC[0]!;
    for (let j = 1; j < k; j++) {
      const q = quantize(Math.log(topV[j]!) - lp1, scheme, range);
      if (q === zero) break; // this slot and all smaller ones join the residual
      ids[j * n + p] = topC[j]!;
      codes[(j - 1) * n + p] = q;
      kept += topV[j]!;
      u++;
    }
    let r = u < C ? total - kept : 0;
    if (u < C && !(r > 1e-6 * total)) { // a small tail: sum it exactly (a difference would round it to 0)
      r = 0;
      for (let c = 0; c < C; c++) {
        let inTop = false;
        for (let j = 0; j < u; j++) if (topC[j] === c) inTop = true;
        if (!inTop) r += probs[base + c]!;
      }
    }
    tailMass[p] = r;
    logTop[p] = lp1;
    used[p] = u;
  }
  const top: TopK = { ids, used, tailMass, k };
  const fit = tail.model === 'even' ? { model: evenTail(C), coefs: new Uint8Array(0) }
    : fitTailModel(probs, width, height, C, top, { klTarget: tail.klTarget, maxRank: tail.model === 'prior' ? 0 : tail.maxRank, grid: tail.grid });
  const { model, coefs } = fit;
  // residual codes: d_r = ln(r / (p_1 · S)), S = Σ over the pixel's tail classes of its shares
  const shares = new TailShares(model, C, coefs, width, height, k);
  for (let p = 0; p < n; p++) {
    const r = tailMass[p]!;
    let code = zero;
    if (used[p]! < C && r > 0) {
      const S = shares.fill(ids, p, n, used[p]!, 1, null);
      // a positive tail below the range is stored at the range's floor, never as zero (no infinite KL)
      code = Math.min(quantize(Math.log(r / Math.max(S, 1e-300)) - logTop[p]!, scheme, range), zero - 1);
    }
    codes[(k - 1) * n + p] = code;
  }
  return { ids, codes, coefs, tail: model, classMax };
}

/**
 * Serialises the planes: ids as they are, codes and tail coefficients row-wise delta-coded (x − left neighbour,
 * mod 2^bits; teacher outputs are smooth, so deltas are mostly 0 / ±1 and compress far better), uint16 codes
 * split into a high-byte and a low-byte plane.
 */
function planesToBytes(planes: EntryPlanes, scheme: QuantScheme, width: number, coefWidth: number): Uint8Array {
  const { ids, codes, coefs } = planes;
  const n = codes.length;
  const two = QUANT_SCHEMES[scheme].bytes === 2;
  const out = new Uint8Array(ids.length + (two ? 2 : 1) * n + coefs.length);
  out.set(ids, 0);
  const o = ids.length;
  for (let row = 0; row < n; row += width) {
    let prev = 0;
    for (let i = row; i < row + width; i++) {
      const x = codes[i]!;
      const d = x - prev;
      prev = x;
      if (two) { out[o + i] = (d >>> 8) & 0xff; out[o + n + i] = d & 0xff; } else out[o + i] = d & 0xff;
    }
  }
  deltaRows(coefs, out, o + (two ? 2 : 1) * n, coefWidth);
  return out;
}

/** Row-wise deltas of byte planes into out[at …]. */
function deltaRows(src: Uint8Array, out: Uint8Array, at: number, width: number): void {
  for (let row = 0; row < src.length; row += width) {
    let prev = 0;
    for (let i = row; i < row + width; i++) { out[at + i] = (src[i]! - prev) & 0xff; prev = src[i]!; }
  }
}

/** Undoes deltaRows: bytes raw[at …] → a new plane of `length` bytes. */
function undeltaRows(raw: Uint8Array, at: number, length: number, width: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let row = 0; row < length; row += width) {
    let prev = 0;
    for (let i = row; i < row + width; i++) { prev = (prev + raw[at + i]!) & 0xff; out[i] = prev; }
  }
  return out;
}

function bytesToPlanes(raw: Uint8Array, header: EntryHeader): EntryPlanes {
  const { k, scheme, width, height } = header;
  const n = k * width * height;
  const { gw, gh } = gridSize(width, height, header.tail.grid);
  const ids = raw.subarray(0, n);
  const two = QUANT_SCHEMES[scheme].bytes === 2;
  const coefs = undeltaRows(raw, n * (two ? 3 : 2), header.tail.rank * gw * gh, gw);
  if (!two) return { ids, codes: undeltaRows(raw, n, n, width), coefs };
  const codes = new Uint16Array(n);
  for (let row = 0; row < n; row += width) {
    let prev = 0;
    for (let i = row; i < row + width; i++) { prev = (prev + ((raw[n + i]! << 8) | raw[2 * n + i]!)) & 0xffff; codes[i] = prev; }
  }
  return { ids, codes, coefs };
}

const deflateAsync = promisify(zlib.deflate);
const inflateAsync = promisify(zlib.inflate);
const brotliCompressAsync = promisify(zlib.brotliCompress);
const brotliDecompressAsync = promisify(zlib.brotliDecompress);

const DEFLATE_OPTIONS: zlib.ZlibOptions = { level: 6 }; // the size of level 9 on these planes at half the time
const brotliOptions = (rawLength: number): zlib.BrotliOptions => ({
  params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 2, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: rawLength },
});

/** Compression on libuv's thread pool: for the main thread, which has other work meanwhile. */
async function compress(raw: Uint8Array, how: Compression): Promise<Uint8Array> {
  if (how === 'none') return raw;
  return how === 'deflate' ? deflateAsync(raw, DEFLATE_OPTIONS) : brotliCompressAsync(raw, brotliOptions(raw.length));
}

/**
 * Compression in this thread: for a worker that does nothing else. Handing it to libuv's pool there adds a thread
 * that competes for the cores with the teacher (bench:label, 2 cores: 0.74 → 0.91 of the bare rate).
 */
function compressSync(raw: Uint8Array, how: Compression): Uint8Array {
  if (how === 'none') return raw;
  return how === 'deflate' ? zlib.deflateSync(raw, DEFLATE_OPTIONS) : zlib.brotliCompressSync(raw, brotliOptions(raw.length));
}

async function decompress(stored: Uint8Array, how: Compression, rawBytes: number): Promise<Uint8Array> {
  if (how === 'none') return stored;
    // one output chunk for the whole payload: 5-20× faster than zlib's default 16 KiB chunks
  const chunkSize = Math.max(1024, rawBytes + 64);
  if (how === 'deflate') return inflateAsync(stored, { maxOutputLength: rawBytes + 1, chunkSize });
  return brotliDecompressAsync(stored, { maxOutputLength: rawBytes + 1, chunkSize });
}

/** Encodes an entry: [H, W, C] probabilities → the bytes of an entry file (compressed on libuv's thread pool). */
export async function encodeEntry(probs: Float32Array, options: EncodeOptions): Promise<Uint8Array> {
  const entry = prepareEntry(probs, options);
  return entry.finish(await compress(entry.raw, entry.compression));
}

/** encodeEntry, compressing in this thread (for worker threads). */
export function encodeEntrySync(probs: Float32Array, options: EncodeOptions): Uint8Array {
  const entry = prepareEntry(probs, options);
  return entry.finish(compressSync(entry.raw, entry.compression));
}

/** The planes' bytes before compression, and how to wrap the compressed payload into an entry file. */
function prepareEntry(probs: Float32Array, options: EncodeOptions): { raw: Uint8Array; compression: Compression; finish: (stored: Uint8Array) => Uint8Array } {
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
  // pseudo-only entries need only p_1 exact: the image-wide tail shape does that
  const planes = quantizePlanes(probs, width, height, C, k, scheme, range, soft ? options.tail : { ...options.tail, model: options.tail?.model === 'even' ? 'even' : 'prior' });
  const raw = planesToBytes(planes, scheme, width, gridSize(width, height, planes.tail.grid).gw);
  const { classMax, tail } = planes;
  return { raw, compression, finish: (stored) => entryFile(options, { soft, pseudo, scheme, compression, k, range, C, width, height }, classMax, tail, raw.length, stored) };
}

function entryFile(
  options: EncodeOptions,
  f: { soft: boolean; pseudo: boolean; scheme: QuantScheme; compression: Compression; k: number; range: number; C: number; width: number; height: number },
  classMax: Float32Array, tail: TailModel, rawLength: number, stored: Uint8Array,
): Uint8Array {
  const { soft, pseudo, scheme, compression, k, range, C, width, height } = f;

  const enc = new TextEncoder();
  const fp = enc.encode(options.fingerprint);
  const hash = enc.encode(options.imageHash);
  let name = enc.encode(options.imageName ?? '');
  if (name.length > MAX_NAME_BYTES) name = enc.encode(`…${(options.imageName ?? '').slice(-300)}`);
  if (fp.length > 4096 || hash.length > 4096) throw new SoftsegError('fingerprint or image hash too long (max 4096 bytes)');
  const varBytes = fp.length + hash.length + name.length;
  const classOffset = FIXED_HEADER + Math.ceil(varBytes / 4) * 4;
  const headerBytes = classOffset + 4 * tailFloats(C, tail.rank);
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
  dv.setUint8(14, tail.rank);
  dv.setUint8(15, tail.grid);
  dv.setUint32(16, width, true);
  dv.setUint32(20, height, true);
  dv.setFloat32(24, range, true);
  dv.setUint32(28, rawLength, true);
  dv.setUint32(32, stored.length, true);
  dv.setUint16(36, fp.length, true);
  dv.setUint16(38, hash.length, true);
  dv.setUint16(40, name.length, true);
  out.set(fp, FIXED_HEADER);
  out.set(hash, FIXED_HEADER + fp.length);
  out.set(name, FIXED_HEADER + fp.length + hash.length);
  const floats = [classMax, tail.base, tail.basis, tail.coefOffset, tail.coefStep];
  let at = classOffset;
  for (const f of floats) for (let i = 0; i < f.length; i++, at += 4) dv.setFloat32(at, f[i]!, true);
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
  if (version !== ENTRY_VERSION && version !== 1) {
    throw new SoftsegError(`cache entry format version ${version} is not supported (this softseg reads versions 1 and ${ENTRY_VERSION})`, {
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
  const rank = version === 1 ? 0 : dv.getUint8(14);
  const grid = version === 1 ? 1 : dv.getUint8(15);
  const width = dv.getUint32(16, true), height = dv.getUint32(20, true);
  const range = dv.getFloat32(24, true);
  const rawBytes = dv.getUint32(28, true), storedBytes = dv.getUint32(32, true);
  if (!scheme) bad(`unknown quantisation scheme ${schemeId}`, imageName);
  if (!compression) bad(`unknown compression ${dv.getUint8(10)}`, imageName);
  if ((modesBits & 3) === 0 || k < 1 || k > numClasses || numClasses > MAX_CLASSES || width === 0 || height === 0 || !(range > 0) || rank >= Math.max(1, numClasses) || grid < 1) {
    bad('header fields out of range', imageName);
  }
  const classOffset = FIXED_HEADER + Math.ceil((fpLen + hashLen + nameLen) / 4) * 4;
  if (classOffset + 4 * tailFloats(numClasses, rank) !== headerBytes) bad('header length does not match its fields', imageName);
  const { gw, gh } = gridSize(width, height, grid);
  const expectRaw = width * height * k * (1 + QUANT_SCHEMES[scheme!].bytes) + rank * gw * gh;
  if (rawBytes !== expectRaw) bad(`payload length ${rawBytes} does not match ${width}×${height}, k ${k}`, imageName);
  if (fileSize !== undefined && fileSize !== headerBytes + storedBytes + 4) {
    bad(`${fileSize < headerBytes + storedBytes + 4 ? 'truncated' : 'trailing bytes'}: ${fileSize} bytes, header declares ${headerBytes + storedBytes + 4}`, imageName);
  }
  let at = classOffset;
  const floats = (count: number): Float32Array => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++, at += 4) out[i] = dv.getFloat32(at, true);
    if (!out.every(Number.isFinite)) bad('non-finite header values', imageName);
    return out;
  };
  const classMax = floats(numClasses);
  const base = floats(numClasses);
  if (version === 1) { // version 1 stored the image-wide tail shape π itself
    if (!base.every((v) => v > 0)) bad('tail prior out of range', imageName);
    for (let c = 0; c < numClasses; c++) base[c] = Math.log(base[c]!);
  }
  const tail: TailModel = { rank, base, basis: floats(rank * numClasses), coefOffset: floats(rank), coefStep: floats(rank), grid };
  return {
    version, modes: { soft: (modesBits & 1) !== 0, pseudo: (modesBits & 2) !== 0 }, scheme: scheme!, compression: compression!, k, numClasses,
    width, height, range, rawBytes, storedBytes,
    fingerprint: dec.decode(bytes.subarray(FIXED_HEADER, FIXED_HEADER + fpLen)),
    imageHash: dec.decode(bytes.subarray(FIXED_HEADER + fpLen, FIXED_HEADER + fpLen + hashLen)),
    imageName: imageName ?? '', headerBytes, classMax, tail,
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
  return { header, planes: bytesToPlanes(raw, header) };
}

// ---------------------------------------------------------------------------------------------------------
// Reconstruction

/**
 * Soft labels at temperature T, [H, W, C] HWC: the top-k probabilities raised to 1/T, the residual spread over
 * the remaining classes by the entry's tail model (shares also raised to 1/T), renormalised per pixel.
 * At T = 1 this is the stored distribution; for T ≠ 1 it equals softmax(ln p / T) of the stored one.
 */
export function reconstructSoft(entry: DecodedEntry, temperature = 1, out?: Float32Array): Float32Array {
  const { header, planes } = entry;
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new SoftsegError(`temperature must be positive (got ${temperature})`);
  const C = header.numClasses, k = header.k, n = header.width * header.height;
  const res = out ?? new Float32Array(n * C);
  if (res.length !== n * C) throw new SoftsegError(`output buffer has ${res.length} values, expected ${n * C}`);
  const w = weightTable(header.scheme, header.range, temperature);
  const { ids, codes } = planes;
  const shares = new TailShares(header.tail, C, planes.coefs, header.width, header.height, header.k);
  const rCode = (k - 1) * n;
  for (let p = 0; p < n; p++) {
    const used = usedSlots(ids, p, n, k);
    const base = p * C;
    let s = 1;
    for (let j = 1; j < used; j++) s += w[codes[(j - 1) * n + p]!]!;
    let wr = 0;
    if (used < C) {
      wr = w[codes[rCode + p]!]!;
      s += wr * shares.fill(ids, p, n, used, temperature, res, base);
    } else res.fill(0, base, base + C);
    const inv = 1 / s;
    const tail = wr * inv;
    for (let c = 0; c < C; c++) res[base + c]! *= tail;
    res[base + ids[p]!] = inv;
    for (let j = 1; j < used; j++) res[base + ids[j * n + p]!] = w[codes[(j - 1) * n + p]!]! * inv;
  }
  return res;
}

/** Slots used at pixel p (slot 0 always; the rest until the first unused one). */
function usedSlots(ids: Uint8Array, p: number, n: number, k: number): number {
  let used = 1;
  while (used < k && ids[used * n + p] !== UNUSED_SLOT) used++;
  return used;
}

/** The confidence map (max probability per pixel at T = 1), [H, W]. */
export function confidenceMap(entry: DecodedEntry): Float32Array {
  const { header, planes } = entry;
  const C = header.numClasses, k = header.k, n = header.width * header.height;
  const w = weightTable(header.scheme, header.range, 1);
  const shares = new TailShares(header.tail, C, planes.coefs, header.width, header.height, header.k);
  const out = new Float32Array(n);
  const { ids, codes } = planes;
  for (let p = 0; p < n; p++) {
    const used = usedSlots(ids, p, n, k);
    let s = 1;
    for (let j = 1; j < used; j++) s += w[codes[(j - 1) * n + p]!]!;
    if (used < C) s += w[codes[(k - 1) * n + p]!]! * shares.fill(ids, p, n, used, 1, null);
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

function hex8(v: number): string {
  return v.toString(16).padStart(8, '0');
}
