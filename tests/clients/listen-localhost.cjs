// Preload for Node programs that listen on every interface and have no host option
// (e.g. `mcp-server-everything streamableHttp`, supergateway): every net.Server.listen()
// call is bound to 127.0.0.1 instead (or to $LISTEN_HOST).
//
//   NODE_OPTIONS="--require=/path/to/tests/clients/listen-localhost.cjs" PORT=3001 \
//     .test-deps/node/node_modules/.bin/mcp-server-everything streamableHttp
'use strict';
const net = require('node:net');
const HOST = process.env.LISTEN_HOST || '127.0.0.1';
const orig = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // listen(options[, cb]): keep path/handle listeners (unix sockets, fds) as they are.
    if (first.path === undefined && first.handle === undefined && first._handle === undefined && first.fd === undefined) {
      args[0] = { ...first, host: HOST };
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, cb])
    if (typeof args[1] === 'string') {
      args[1] = HOST;
    } else {
      args.splice(1, 0, HOST);
    }
  } else if (first === undefined || typeof first === 'function') {
    // listen([cb]): random port
    args.unshift(0, HOST);
  }
  return orig.apply(this, args);
};
