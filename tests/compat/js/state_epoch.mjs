// The server restarts (memory engine: a new epoch) while the client is away; recovery is refused.
// The script prints {"step": "restart"} and waits for a line on stdin: the test restarts the server.
import { createInterface } from 'node:readline';
import { api, connected, run, uniqueChannel, unpayload } from './sdk.mjs';
import { nth, only, recorder } from './state_events.mjs';

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function step(name) {
  console.log(JSON.stringify({ step: name }));
  await lines.next();
}

run(async () => {
  const channel = uniqueChannel();
  const client = await connected({ sub: '42' });
  const sub = client.newSubscription(channel);
  const seen = recorder(sub, ['subscribed', 'publication']);
  sub.subscribe();
  const first = await nth(seen, 'subscribed', 1);
  await api('publish', { channel, data: { n: 1 } });
  await nth(seen, 'publication', 1);

  await step('restart');
  const again = await nth(seen, 'subscribed', 2, 10000);
  await api('publish', { channel, data: { n: 2 } });
  await nth(seen, 'publication', 2);
  return {
    wasRecovering: again.wasRecovering,
    recovered: again.recovered,
    epochChanged: again.streamPosition.epoch !== first.streamPosition.epoch,
    publications: only(seen, 'publication').map((ctx) => [ctx.offset, unpayload(ctx.data)]),
  };
});
