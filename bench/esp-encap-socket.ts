// Holds a UDP socket on <address>:4500 with UDP_ENCAP_ESPINUDP (RFC 3948) inside a namespace, for
// bench/esp-kernel-pair.ts: the kernel decapsulates ESP-in-UDP only on a port whose socket asked
// for it (an IKE daemon's NAT-T socket, normally). Nothing is read or sent here.
//   node --import tsx bench/esp-encap-socket.ts <address> [port 4500] [maxSeconds 600]
// Prints "ready encap=2" once the option is set; exits on SIGTERM (the namespace's cleanup kills it
// by pid) or after maxSeconds, so a forgotten holder never outlives its bench.
import { createSocket } from 'node:dgram';
import { dgramFd, loadNative, setUdpEncap } from '../src/xfrm/native.js';

const [address, port = '4500', maxSeconds = '600'] = process.argv.slice(2);
if (!address) throw new Error('usage: esp-encap-socket.ts <address> [port] [maxSeconds]');
const sock = createSocket('udp4');
sock.on('error', (e) => { process.stderr.write(`esp-encap-socket: ${e.message}\n`); process.exit(1); });
sock.bind(Number(port), address, () => {
  setUdpEncap(sock);
  process.stdout.write(`ready encap=${loadNative().getUdpEncap(dgramFd(sock))}\n`);
});
const stop = (): void => { sock.close(); process.exit(0); };
setTimeout(stop, Number(maxSeconds) * 1000).unref();
process.on('SIGTERM', stop);
