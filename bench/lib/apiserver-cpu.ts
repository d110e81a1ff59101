// The apiserver's and etcd's own CPU, for benches that weigh what a change costs the control plane.
import { readFileSync } from 'node:fs';

/** CPU seconds of the apiserver and etcd (e2e/apiserver.sh's pid files in KIPSEC_APISERVER_DIR), if on this machine. */
export function apiserverCpuSec(): number | undefined {
  const dir = process.env['KIPSEC_APISERVER_DIR'];
  if (!dir) return undefined;
  try {
    let ticks = 0;
    for (const f of ['apiserver.pid', 'etcd.pid']) {
      const stat = readFileSync(`/proc/${readFileSync(`${dir}/${f}`, 'utf8').trim()}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    }
    return ticks / 100;
  } catch { return undefined; }
}
