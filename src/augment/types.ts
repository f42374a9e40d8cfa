// The sample types augmentation works on: plain typed arrays, row-major, HWC for multi-channel maps.

/** One training sample before augmentation. */
export interface Sample {
  /** RGB HWC: bytes (0..255) as decoded, or floats on the 0..1 scale. */
  image: Uint8Array | Float32Array;
  /** Class ids, HW (the ignore index marks unlabeled pixels). */
  mask?: Uint8Array;
  /** Per-pixel soft labels, HWC with K channels (e.g. teacher probabilities). */
  soft?: Float32Array;
  /** 1 where a pixel counts, 0 where it does not, HW. */
  keep?: Uint8Array;
  width: number;
  height: number;
}

/** The rectangle of the output that holds image content (outside it: padding). x1, y1 exclusive. */
export interface ValidRect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** A sample after augmentation or the eval transform. */
export interface AugmentedSample {
  /** RGB HWC, normalised (or on the 0..1 scale with normalize: false); padding is 0. */
  image: Float32Array;
  /** The strongly augmented view of the same crop, when the options asked for one (`strongView`). */
  strongImage?: Float32Array;
  /** Padding is the ignore index. */
  mask?: Uint8Array;
  /** Padding is 0. */
  soft?: Float32Array;
  /** Present when the input had `keep` or `soft`; padding is 0. */
  keep?: Uint8Array;
  width: number;
  height: number;
  valid: ValidRect;
}
