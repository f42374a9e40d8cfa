// Worker thread for the soft-label reader (reader.ts): cache reads, reconstruction at T and resampling.
import { parentPort } from 'node:worker_threads';
import { serveRequests } from '../worker-pool.js';
import { readSoftCrop, type SoftCrop, type SoftCropRequest } from './reader.js';

serveRequests<SoftCropRequest, SoftCrop | null>(parentPort!, readSoftCrop, (r) => (r ? [r.soft.buffer as ArrayBuffer] : []));
