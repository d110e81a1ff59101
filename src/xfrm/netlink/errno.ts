// errno number → name (EEXIST, ENOENT, …) from Node's own table of this platform's values,
// so NLMSG_ERROR codes print as the kernel documents them, not as bare numbers.
import { constants } from 'node:os';

const byNumber = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!byNumber.has(n)) byNumber.set(n, name);
// Linux aliases Node lists first under another name: keep the names the kernel source uses.
byNumber.set(constants.errno.EAGAIN, 'EAGAIN');
byNumber.set(constants.errno.EOPNOTSUPP, 'EOPNOTSUPP');

export function errnoName(errno: number): string {
  return byNumber.get(Math.abs(errno)) ?? `ERRNO_${Math.abs(errno)}`;
}

export const errno = constants.errno;
