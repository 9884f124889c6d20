// Preloaded into the peer gateway (node --import ./loopback.mjs): every server that listens on a
// port without a host listens on 127.0.0.1 only, like everything else bench/run.sh starts.
// (@portkey-ai/gateway's start-server.js calls serve({port}) without a hostname.)
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a = args[0];
  if (a && typeof a === 'object' && !Array.isArray(a) && a.port !== undefined && a.host === undefined && a.path === undefined) {
    args[0] = { ...a, host: '127.0.0.1' };
  } else if ((typeof a === 'number' || (typeof a === 'string' && /^\d+$/.test(a))) && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
