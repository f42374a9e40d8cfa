// Decoding images (sharp → RGB bytes) and class-id masks (fast-png, which keeps palette indices), and writing
// masks back as 8-bit grayscale or palette PNGs. Every failure a user can fix is a SoftsegError naming the file.
import { readFile } from 'node:fs/promises';
import { decode as decodePng, encode as encodePng, hasPngSignature } from 'fast-png';
import sharp from 'sharp';
import { SoftsegError } from '../errors.js';
import { writeFileAtomic } from './fs-util.js';

export type Rgb = [number, number, number];

/** An 8-bit RGB image, HWC, row-major. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A class-id mask, HW, row-major (values are class ids; the ignore index marks unlabeled pixels). */
export interface DecodedMask {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeMaskOptions {
  /** Colour of each class id (index = id): lets RGB masks be read by mapping colours to ids. */
  palette?: readonly (readonly number[])[];
}

function shortReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0]!.slice(0, 200);
}

/**
 * Decodes an image file (PNG, JPEG, WebP, TIFF, anything sharp reads) to 8-bit RGB: EXIF orientation is
 * applied, alpha dropped, grayscale expanded to three channels, 16-bit reduced to 8-bit.
 */
export async function decodeImage(path: string): Promise<DecodedImage> {
  try {
    const { data, info } = await sharp(path, { failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const { width, height, channels } = info;
    const px = width * height;
    if (channels === 3) return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
    // Defensive: libvips normally honours toColourspace('srgb'); expand or cut channels if it did not.
    const out = new Uint8Array(px * 3);
    for (let i = 0; i < px; i++) {
      for (let c = 0; c < 3; c++) out[i * 3 + c] = data[i * channels + (channels >= 3 ? c : 0)]!;
    }
    return { data: out, width, height };
  } catch (err) {
    throw new SoftsegError(`cannot decode image (${shortReason(err)})`, {
      file: path,
      hint: 'the file is corrupt or not an image; replace it, delete it, or pass --skip-bad',
      cause: err,
    });
  }
}

function unpackBits(data: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  const perByte = 8 / depth;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const byte = data[y * rowBytes + Math.floor(x / perByte)]!;
      const shift = 8 - depth * ((x % perByte) + 1);
      out[y * width + x] = (byte >> shift) & mask;
    }
  }
  return out;
}

/** The first channel of an interleaved 2/3/4-channel image when its colour channels are equal everywhere, else null. */
function greyIds(src: Uint8Array, channels: number, n: number): Uint8Array | null {
  const colour = channels >= 3 ? 3 : 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * channels;
    const v = src[o]!;
    for (let c = 1; c < colour; c++) if (src[o + c] !== v) return null;
    out[i] = v;
  }
  return out;
}

/** Decodes mask bytes; `file` is only used in error messages. See {@link decodeMask}. */
export function decodeMaskBuffer(buf: Uint8Array, file: string, options: DecodeMaskOptions = {}): DecodedMask {
  if (!hasPngSignature(buf)) {
    throw new SoftsegError('mask is not a PNG file', {
      file,
      hint: 'save masks as 8-bit grayscale or palette PNGs of class ids (JPEG compression changes the ids)',
    });
  }
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(buf);
  } catch (err) {
    throw new SoftsegError(`cannot decode mask PNG (${shortReason(err)})`, {
      file,
      hint: 'the file is corrupt; replace it, delete it with its image, or pass --skip-bad',
      cause: err,
    });
  }
  const { width, height, depth, channels } = png;
  const n = width * height;
  if (depth === 16) {
    // Class ids saved as 16-bit grayscale are read when every value fits in 8 bits (lossless).
    const raw = png.data as Uint16Array;
    if (channels === 1) {
      const big = raw.findIndex((v, i) => i < n && v > 255);
      if (big < 0) return { data: Uint8Array.from(raw.subarray(0, n)), width, height };
      throw new SoftsegError(`16-bit mask has value ${raw[big]} at x=${big % width}, y=${Math.floor(big / width)}, more than 255`, {
        file,
        hint: 'class ids and the ignore index must fit in 8 bits; save masks as 8-bit grayscale or palette PNGs of class ids',
      });
    }
    throw new SoftsegError('16-bit colour mask PNG is not supported', {
      file,
      hint: 'save masks as 8-bit grayscale or palette PNGs of class ids',
    });
  }
  if (channels === 1) {
    const raw = png.data as Uint8Array;
    const data = depth === 8 ? raw : unpackBits(raw, width, height, depth);
    return { data: data.length === n ? data : data.subarray(0, n), width, height };
  }
  const src = png.data as Uint8Array;
  let paletteError: SoftsegError | undefined;
  if ((channels === 3 || channels === 4) && options.palette && options.palette.length > 0) {
    const lookup = new Map<number, number>();
    options.palette.forEach((c, id) => {
      const key = (c[0]! << 16) | (c[1]! << 8) | c[2]!;
      if (!lookup.has(key)) lookup.set(key, id);
    });
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * channels;
      const key = (src[o]! << 16) | (src[o + 1]! << 8) | src[o + 2]!;
      const id = lookup.get(key);
      if (id === undefined) {
        paletteError = new SoftsegError(
          `RGB mask has colour (${src[o]}, ${src[o + 1]}, ${src[o + 2]}) at x=${i % width}, y=${Math.floor(i / width)} that is not in the palette`,
          { file, hint: 'add the colour to "palette" in dataset.json (its position is the class id), or save masks as grayscale class ids' },
        );
        break;
      }
      out[i] = id;
    }
    if (!paletteError) return { data: out, width, height };
  }
  // Class ids saved with colour channels (R = G = B, as an RGB save of a grayscale array writes them), or with an
  // alpha channel: the first channel is the id when every pixel is gray. Alpha is ignored, as in the palette path.
  const grey = greyIds(src, channels, n);
  if (grey) return { data: grey, width, height };
  if (paletteError) throw paletteError;
  const kind = channels === 2 ? 'grayscale + alpha' : channels === 3 ? 'RGB' : 'RGBA';
  throw new SoftsegError(`mask is ${kind}, not class ids`, {
    file,
    hint: 'save masks as 8-bit grayscale or palette PNGs of class ids, or list the class colours as "palette" in dataset.json',
  });
}

/**
 * Decodes a class-id mask: an 8-bit (or 1/2/4-bit) grayscale PNG, or a palette PNG whose palette indices are
 * the class ids (PASCAL VOC style). RGB masks are read with `options.palette` (colour → id), or as ids when
 * every pixel is gray (R = G = B; alpha ignored); 16-bit grayscale when every value fits in 8 bits.
 */
export async function decodeMask(path: string, options: DecodeMaskOptions = {}): Promise<DecodedMask> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new SoftsegError(`cannot read mask (${shortReason(err)})`, { file: path, cause: err });
  }
  return decodeMaskBuffer(buf, path, options);
}

/** Encodes a class-id mask as an 8-bit grayscale PNG (exact round trip through decodeMask). */
export async function encodeMask(data: Uint8Array, width: number, height: number): Promise<Buffer> {
  if (data.length !== width * height) throw new RangeError(`mask has ${data.length} values, expected ${width}x${height}`);
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

/** Writes a class-id mask as an 8-bit grayscale PNG, atomically (temp + rename), creating folders. */
export async function writeMask(path: string, data: Uint8Array, width: number, height: number): Promise<void> {
  await writeFileAtomic(path, await encodeMask(data, width, height));
}

/** The PASCAL VOC colour map: 256 colours, class 0 black, index 255 (the usual ignore) (224, 224, 192). */
export function vocPalette(n = 256): Rgb[] {
  const out: Rgb[] = [];
  for (let i = 0; i < n; i++) {
    let r = 0, g = 0, b = 0, c = i;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    out.push([r, g, b]);
  }
  return out;
}

/** A 256-entry palette: the given colours first, the VOC colour map for the rest. */
export function fullPalette(palette?: readonly (readonly number[])[]): Rgb[] {
  const voc = vocPalette(256);
  return voc.map((c, i) => {
    const p = palette?.[i];
    return p ? [p[0]! & 255, p[1]! & 255, p[2]! & 255] : c;
  });
}

/** Encodes a class-id mask as a palette PNG with the given palette (indices = ids, as VOC masks). */
export function encodePaletteMask(data: Uint8Array, width: number, height: number, palette?: readonly (readonly number[])[]): Uint8Array {
  if (data.length !== width * height) throw new RangeError(`mask has ${data.length} values, expected ${width}x${height}`);
  return encodePng({ width, height, data, channels: 1, depth: 8, palette: fullPalette(palette) });
}

/**
 * Writes a class-id mask as a palette PNG with the GIVEN palette (missing entries from the VOC map), atomically.
 * Viewers show colours; decodeMask reads the ids back.
 */
export async function writePaletteMask(
  path: string,
  data: Uint8Array,
  width: number,
  height: number,
  palette?: readonly (readonly number[])[],
): Promise<void> {
  await writeFileAtomic(path, encodePaletteMask(data, width, height, palette));
}

/** Colours a class-id mask (HW) into RGB (HWC) with a palette (missing entries from the VOC map). */
export function colorizeMask(data: Uint8Array, palette?: readonly (readonly number[])[]): Uint8Array {
  const pal = fullPalette(palette);
  const out = new Uint8Array(data.length * 3);
  for (let i = 0; i < data.length; i++) {
    const c = pal[data[i]!]!;
    out[i * 3] = c[0];
    out[i * 3 + 1] = c[1];
    out[i * 3 + 2] = c[2];
  }
  return out;
}
