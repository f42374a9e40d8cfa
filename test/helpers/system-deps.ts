/**
 * System dependencies of tests (programs npm does not install, such as Chromium): one rule for every test that
 * needs one. `npm test` never installs them — `scripts/install-system-deps.sh` does, and `.ci/run` calls it.
 *
 * - Found: the test runs.
 * - Missing, outside CI: the test skips, and the skip's reason (printed by the test reporter) names what is
 *   missing and the script that installs it.
 * - Missing with CI set (CI=true, as CI services set it): the test fails with that reason — on CI a missing
 *   dependency is a broken set-up, not a reason to pass.
 *
 * Use:
 *   const chromium = requireChromium();
 *   if ('skip' in chromium) return t.skip(chromium.skip);
 *   ... chromium.path ...
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** What a test gets back: the dependency, or why it is absent (when skipping is allowed). */
export type SystemDependency<T> = T | { skip: string };

const INSTALL_HINT = 'run scripts/install-system-deps.sh';

/** True when the environment says it is CI (CI=true or 1, as GitHub Actions, GitLab and most services set it). */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? '').toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

/**
 * The one rule for a missing dependency: `{ skip: reason }` outside CI; under CI an Error with the same reason
 * (thrown, so the test fails).
 */
export function missingSystemDependency(reason: string, env: NodeJS.ProcessEnv = process.env): { skip: string } {
  if (isCI(env)) throw new Error(`${reason} (CI=${env.CI}: missing system dependencies fail the tests on CI)`);
  return { skip: reason };
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first of `names` found as an executable on `env.PATH`, or null. */
export function findOnPath(names: readonly string[], env: NodeJS.ProcessEnv = process.env): string | null {
  for (const name of names) {
    for (const dir of (env.PATH ?? '').split(delimiter)) {
      if (dir && isExecutableFile(join(dir, name))) return join(dir, name);
    }
  }
  return null;
}

/**
 * A headless-capable Chromium: $CHROMIUM_PATH when set (it must be an executable file), else `chromium` or
 * `chromium-browser` on PATH. Missing → `{ skip }` outside CI, a thrown Error on CI.
 */
export function requireChromium(env: NodeJS.ProcessEnv = process.env): SystemDependency<{ path: string }> {
  if (env.CHROMIUM_PATH) {
    if (isExecutableFile(env.CHROMIUM_PATH)) return { path: env.CHROMIUM_PATH };
    return missingSystemDependency(`CHROMIUM_PATH=${env.CHROMIUM_PATH} is not an executable file`, env);
  }
  const path = findOnPath(['chromium', 'chromium-browser'], env);
  if (path) return { path };
  return missingSystemDependency(`chromium is not installed: ${INSTALL_HINT} (Debian's chromium package), or set CHROMIUM_PATH`, env);
}

/**
 * A WebGPU adapter for the webgpu backend's tests: any adapter Dawn finds (on CI, Mesa's lavapipe — a CPU
 * Vulkan driver that scripts/install-system-deps.sh installs). None → `{ skip }` outside CI, a thrown Error on CI.
 */
export async function requireWebGpu(env: NodeJS.ProcessEnv = process.env): Promise<SystemDependency<{ adapter: import('../../src/backends/webgpu.js').WebGpuAdapterInfo }>> {
  const { probeWebGpuAdapter } = await import('../../src/backends/webgpu.js');
  const probe = await probeWebGpuAdapter();
  if (probe.ok) return { adapter: probe.adapter };
  return missingSystemDependency(`no WebGPU adapter for the webgpu tests: ${probe.why} (${INSTALL_HINT}: libvulkan1 and Mesa's lavapipe)`, env);
}
