/** Where a search runs: 'auto' resolves once per process to the GPU when one is usable. */
import { native } from './native';

export type DeviceChoice = 'cpu' | 'gpu' | 'auto';

let gpuUsable: boolean | undefined;
export function resolveDevice(device: DeviceChoice): 'cpu' | 'gpu' {
  if (device !== 'auto') return device;
  gpuUsable ??= native().buildInfo().cudaDevices > 0;
  return gpuUsable ? 'gpu' : 'cpu';
}
