import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';

/** The tests' PostgreSQL (trust auth, database `test`); `TEST_DATABASE_URL` overrides it. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://127.0.0.1:5432/test';

/**
 * A TCP proxy in front of PostgreSQL that a test can cut and restore: a database outage (refused
 * and reset connections) without stopping the shared server. Restarting listens on the same port,
 * so clients configured with {@link url} find the database back.
 */
export class PgProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private stalled = false;
  port = 0;

  constructor(private readonly upstream = TEST_DATABASE_URL) {}

  /** Listens (again, on the same port after a {@link cut}). */
  async start(): Promise<this> {
    const pg = new URL(this.upstream);
    this.server = createServer((client) => {
      const upstream = connect(Number(pg.port || 5432), pg.hostname);
      this.sockets.add(client).add(upstream);
      // Bytes are dropped, not buffered, while stalled: a partition loses them too.
      client.on('data', (b) => this.stalled || upstream.write(b));
      upstream.on('data', (b) => this.stalled || client.write(b));
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The upstream URL through this proxy. */
  get url(): string {
    const u = new URL(this.upstream);
    u.host = `127.0.0.1:${this.port}`;
    return u.toString();
  }

  /**
   * A network partition: connections stay open but nothing gets through either way, with no
   * reset for the client to notice. {@link resume} lets traffic through again.
   */
  stall(): void {
    this.stalled = true;
  }

  resume(): void {
    this.stalled = false;
  }

  /** Refuses new connections and resets the open ones (the port stays reserved for restart). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  }
}
