// A crowd of npm `centrifuge` (centrifuge-js) clients in a Node process of its own, driven over stdin
// by a test: the JavaScript twin of sdk_crowd.py, with the same commands and answers.
//
//     node tests/helpers/js_crowd.mjs SETTINGS
//
// SETTINGS is a JSON object: `url`, `channel`, `first` and `count` (the clients are users
// `user<first>` to `user<first + count - 1>`), `secret` (the HMAC key of their connection tokens)
// and `clientOptions` (options of `new Centrifuge`, e.g. `timeout` and `maxReconnectDelay` in
// milliseconds; the SDK's defaults otherwise). The process reads one command per line and answers
// each with one JSON line once it is done:
//
//     join            connects every client and subscribes it to the channel with recovery
//     mark LAST       what happens from now on is the storm; LAST is the seq of the last publication
//     progress        how many clients are done (subscribed again with the last publication, or told
//                     that they may have missed some) and connected again since the mark, and the
//                     process's CPU seconds since the mark
//     report RESTARTED
//                     the figures since the mark (times relative to RESTARTED, a time.monotonic() of
//                     the test's process: process.hrtime is the same CLOCK_MONOTONIC) and every
//                     client's subscription events, which the Python side (js_crowd.py) checks with
//                     the same code as the Python crowd's
//     quit            disconnects every client and exits
//
// The SDK is used as an application would use it in Node: unmodified, with `ws` as its WebSocket
// (Node 20 has none of its own). The WebSocket handed to each client is `ws`'s, subclassed only to
// note the reason of a failed handshake (an answer 503 of the rate limit), which the SDK reports as
// "transport closed" without the status.

import { createHmac } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';

const CONNECT_BATCH = 50; // clients connecting at once while the crowd is built (before the storm)
const READY_TIMEOUT = 60000; // ms for one client's connect or subscribe while the crowd is built

const settings = JSON.parse(process.argv[2]);
const seconds = () => Number(process.hrtime.bigint()) / 1e9;
const rssMib = () => process.memoryUsage.rss() / 2 ** 20;
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};
const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const base64url = (value) => Buffer.from(value).toString('base64url');

function token(user) {
  const head = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = base64url(JSON.stringify({ sub: user }));
  const signature = createHmac('sha256', settings.secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${signature}`;
}

class Counter extends Map {
  add(key) {
    this.set(key, (this.get(key) || 0) + 1);
  }
}

// One client of the crowd and what it recorded: its subscription's events as short arrays
// (`[name, ...fields]`, the names of the Python SDK's handlers), the client's events since the mark
// as counts.
class Member {
  constructor(index, crowd) {
    this.index = index;
    this.crowd = crowd;
    this.events = [];
    this.marked = false;
    this.mark = 0;
    this.last = null;
    this.hasLast = false;
    this.toldSinceMark = false;
    this.connectedAt = null;
    this.doneAt = null;
    this.handshakeError = '';
    const member = this;
    this.client = new Centrifuge(settings.url, {
      ...settings.clientOptions,
      token: token(`user${index}`),
      websocket: class extends WebSocket {
        constructor(...args) {
          super(...args);
          member.handshakeError = '';
          this.on('error', (error) => {
            member.handshakeError = error.message;
          });
        }
      },
    });
    this.sub = this.client.newSubscription(settings.channel);
    this.listen();
  }

  listen() {
    const { client, sub, crowd } = this;
    client.on('connecting', (ctx) => this.note('on_connecting', `${ctx.code} ${ctx.reason}`));
    client.on('disconnected', (ctx) => this.note('on_disconnected', `${ctx.code} ${ctx.reason}`));
    client.on('connected', () => {
      if (this.marked && this.connectedAt === null) {
        this.connectedAt = seconds();
      }
    });
    client.on('error', (ctx) => {
      const cause = this.handshakeError ? ` (${this.handshakeError})` : '';
      this.note('on_error', `${ctx.type}: ${ctx.error.message}${cause}`.slice(0, 80));
    });
    sub.on('subscribing', (ctx) => {
      this.events.push(['on_subscribing', ctx.code, ctx.reason]);
      if (ctx.code === 2500) this.toldSinceMark = this.marked;
    });
    sub.on('subscribed', (ctx) => {
      this.events.push(['on_subscribed', ctx.wasRecovering, ctx.recovered]);
      if (ctx.wasRecovering && !ctx.recovered) this.toldSinceMark = this.marked;
    });
    sub.on('unsubscribed', (ctx) => this.events.push(['on_unsubscribed', ctx.code, ctx.reason]));
    sub.on('error', (ctx) => this.events.push(['on_error', ctx.type, String(ctx.error.message).slice(0, 60)]));
    sub.on('publication', (ctx) => {
      this.events.push(['on_publication', ctx.data.seq]);
      if (this.marked && ctx.data.seq === this.last) this.hasLast = true;
    });
    sub.on('join', () => crowd.joinsAndLeaves++);
    sub.on('leave', () => crowd.joinsAndLeaves++);
  }

  note(name, what) {
    if (!this.marked) return;
    (name === 'on_error' ? this.crowd.failures : this.crowd.drops).add(
      name === 'on_error' ? what : `${name} ${what}`,
    );
  }

  async join() {
    this.client.connect();
    await this.client.ready(READY_TIMEOUT);
    this.sub.subscribe();
    await this.sub.ready(READY_TIMEOUT);
  }
}

class Crowd {
  constructor() {
    this.rssEmpty = rssMib();
    this.members = [];
    for (let offset = 0; offset < settings.count; offset++) {
      this.members.push(new Member(settings.first + offset, this));
    }
    this.waiting = [];
    this.failures = new Counter();
    this.drops = new Counter();
    this.joinsAndLeaves = 0;
    this.cpuAtMark = 0;
    this.builtSeconds = 0;
  }

  async join() {
    const began = seconds();
    for (let start = 0; start < this.members.length; start += CONNECT_BATCH) {
      await Promise.all(this.members.slice(start, start + CONNECT_BATCH).map((member) => member.join()));
    }
    this.builtSeconds = seconds() - began;
    return { seconds: round(this.builtSeconds), rss_mib: round(rssMib()), rss_mib_empty: round(this.rssEmpty) };
  }

  mark(last) {
    for (const member of this.members) {
      member.marked = true;
      member.mark = member.events.length;
      member.last = last;
    }
    this.waiting = [...this.members];
    this.cpuAtMark = cpuSeconds();
    // How late the event loop ran its timers in the storm: a crowd that falls behind its clients
    // fires their timeouts late and reads the node's answers late.
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
    return { rss_mib: round(rssMib()), cpu_s: round(this.cpuAtMark) };
  }

  progress() {
    const now = seconds();
    this.waiting = this.waiting.filter((member) => {
      if (member.sub.state === 'subscribed' && (member.hasLast || member.toldSinceMark)) {
        member.doneAt = now;
        return false;
      }
      return true;
    });
    return {
      done: this.members.length - this.waiting.length,
      connected: this.members.filter((member) => member.connectedAt !== null).length,
      cpu_s: round(cpuSeconds() - this.cpuAtMark, 2),
    };
  }

  report(restarted) {
    const waiting = new Set(this.waiting);
    const since = (at) => round(at - restarted, 2);
    return {
      clients: this.members.length,
      connected_s: this.members.filter((m) => m.connectedAt !== null).map((m) => since(m.connectedAt)),
      done_s: this.members.filter((m) => m.doneAt !== null).map((m) => since(m.doneAt)),
      failed_connect_attempts_by_error: Object.fromEntries(this.failures),
      connection_ends_by_code: Object.fromEntries(this.drops),
      joins_and_leaves: this.joinsAndLeaves,
      rss_mib: round(rssMib()),
      rss_mib_empty: round(this.rssEmpty),
      built_s: round(this.builtSeconds),
      cpu_s_build: round(this.cpuAtMark),
      cpu_s_storm: round(cpuSeconds() - this.cpuAtMark),
      loop_delay_ms_max: round(this.loopDelay.max / 1e6),
      members: this.members.map((m) => ({
        index: m.index,
        mark: m.mark,
        events: m.events,
        waiting: waiting.has(m),
        state: `${m.client.state}/${m.sub.state}`,
      })),
    };
  }

  async close() {
    for (const member of this.members) {
      member.client.disconnect();
    }
  }
}

const crowd = new Crowd();
const commands = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of commands) {
  const [command, argument] = line.split(/\s+/, 2);
  if (!command || command === 'quit') break;
  let answer = {};
  if (command === 'join') answer = await crowd.join();
  else if (command === 'mark') answer = crowd.mark(Number(argument));
  else if (command === 'progress') answer = crowd.progress();
  else if (command === 'report') answer = crowd.report(Number(argument));
  process.stdout.write(`${JSON.stringify({ ok: true, ...answer })}\n`);
}
await crowd.close();
// The WebSocket closing handshakes go on in the background; a moment for them, then out.
setTimeout(() => process.exit(0), 500);
