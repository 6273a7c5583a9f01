/** Connection status of the transport, emitted on `server.status` / `client.status`. */
export enum RedisStreamsStatus {
  CONNECTING = 'connecting',
  CONNECTED = 'connected',
  RECONNECTING = 'reconnecting',
  DISCONNECTED = 'disconnected',
  CLOSED = 'closed',
}

/** Connection events a caller can listen to with `server.on(...)` / `client.on(...)` (ioredis events). */
export enum RedisStreamsEvent {
  ERROR = 'error',
  CONNECT = 'connect',
  READY = 'ready',
  RECONNECTING = 'reconnecting',
  END = 'end',
  CLOSE = 'close',
}

/** Listener signatures per {@link RedisStreamsEvent}. */
export type RedisStreamsEventsMap = {
  [RedisStreamsEvent.ERROR]: (error: Error) => void;
  [RedisStreamsEvent.CONNECT]: () => void;
  [RedisStreamsEvent.READY]: () => void;
  [RedisStreamsEvent.RECONNECTING]: (delayMs: number) => void;
  [RedisStreamsEvent.END]: () => void;
  [RedisStreamsEvent.CLOSE]: () => void;
};
