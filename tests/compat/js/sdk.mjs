// Shared by the scenario scripts: which build of the npm `centrifuge` SDK to use, tokens, the HTTP
// API, and one JSON line of observations for the Python test to assert on.
//
// The test passes everything through the environment: ROTARY_WS_URL, ROTARY_HTTP_URL,
// ROTARY_SECRET (HMAC key of connection and subscription tokens), ROTARY_API_KEY and
// ROTARY_PROTOCOL (`json` or `protobuf`), and ROTARY_TRANSPORT (`websocket` when unset, or one of
// the emulated transports `http_stream` and `sse`, which also use the emulation endpoint: that of
// the same server, or ROTARY_EMULATION_URL when set, e.g. another node of a cluster).
// See https://centrifugal.dev/docs/transports/client_api.

import { createHmac } from 'node:crypto';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';

export const env = {
  wsUrl: process.env.ROTARY_WS_URL,
  httpUrl: process.env.ROTARY_HTTP_URL,
  secret: process.env.ROTARY_SECRET,
  apiKey: process.env.ROTARY_API_KEY,
  protobuf: process.env.ROTARY_PROTOCOL === 'protobuf',
  transport: process.env.ROTARY_TRANSPORT || 'websocket',
};

// The Protobuf build is a separate entry point of the same package, with the same API.
const sdk = env.protobuf ? await import('centrifuge/build/protobuf') : await import('centrifuge');

export const { Centrifuge } = sdk;

const base64url = (value) => Buffer.from(value).toString('base64url');

// An HS256 JWT, as an application backend signs connection and subscription tokens.
export function token(claims, secret = env.secret) {
  const head = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = base64url(JSON.stringify(claims));
  const signature = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${signature}`;
}

export const now = () => Math.floor(Date.now() / 1000);

const clients = [];

// The endpoint and options of the transport under test. Node has fetch and ReadableStream; the
// EventSource comes from the `eventsource` package.
function transportOptions() {
  if (env.transport === 'websocket') {
    return [env.wsUrl, { websocket: WebSocket }];
  }
  const endpoint = [{ transport: env.transport, endpoint: `${env.httpUrl}/connection/${env.transport}` }];
  return [
    endpoint,
    {
      fetch,
      readableStream: ReadableStream,
      eventsource: EventSource,
      emulationEndpoint: process.env.ROTARY_EMULATION_URL || `${env.httpUrl}/emulation`,
    },
  ];
}

export function newClient(options = {}) {
  const [endpoint, transport] = transportOptions();
  const client = new Centrifuge(endpoint, {
    ...transport,
    timeout: 5000,
    minReconnectDelay: 50,
    maxReconnectDelay: 500,
    ...options,
  });
  clients.push(client);
  return client;
}

export async function connected(claims, options = {}) {
  const client = newClient({ token: token(claims), ...options });
  client.connect();
  await client.ready(5000);
  return client;
}

export async function subscribed(client, channel, options = {}) {
  const sub = client.newSubscription(channel, options);
  sub.subscribe();
  await sub.ready(5000);
  return sub;
}

// Publication data as the SDK takes it: a JSON value over JSON, bytes over Protobuf.
export function payload(data) {
  return env.protobuf ? new TextEncoder().encode(JSON.stringify(data)) : data;
}

// Publication data as the SDK hands it over, back to a JSON value.
export function unpayload(data) {
  return env.protobuf ? JSON.parse(new TextDecoder().decode(data)) : data;
}

// The next `event` from an SDK emitter, or a rejection after `ms`.
export function next(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' event within ${ms} ms`)), ms);
    emitter.once(event, (ctx) => {
      clearTimeout(timer);
      resolve(ctx);
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function api(method, body) {
  const response = await fetch(`${env.httpUrl}/api/${method}`, {
    method: 'POST',
    headers: { 'X-API-Key': env.apiKey, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 200 || JSON.parse(text).error) {
    throw new Error(`API ${method} failed: ${response.status} ${text}`);
  }
  return JSON.parse(text);
}

export function uniqueChannel() {
  return `chat:${Math.random().toString(16).slice(2, 14)}`;
}

// Runs a scenario; prints its observations as one JSON line, closes its clients and exits.
export async function run(scenario) {
  try {
    const observed = await scenario();
    console.log(JSON.stringify(observed));
    process.exitCode = 0;
  } catch (error) {
    console.error(error);
    process.exitCode = 1;
  } finally {
    clients.forEach((client) => client.disconnect());
    setTimeout(() => process.exit(), 50);
  }
}
