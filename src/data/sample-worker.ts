// Worker thread for the loader's samples (sample.ts): decode, augmentation and cached soft labels, off the
// training thread.
import { parentPort } from 'node:worker_threads';
import { serveRequests } from '../worker-pool.js';
import { prepareSample, sampleBuffers, type PreparedSample, type SampleRequest } from './sample.js';

serveRequests<SampleRequest, PreparedSample>(parentPort!, prepareSample, sampleBuffers);
