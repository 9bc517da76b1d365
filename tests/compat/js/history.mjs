// History of a channel after three client publications, oldest first and newest first.
import { connected, payload, run, subscribed, uniqueChannel, unpayload } from './sdk.mjs';

run(async () => {
  const client = await connected({ sub: '42' });
  const sub = await subscribed(client, uniqueChannel());
  for (const n of [0, 1, 2]) {
    await sub.publish(payload({ n }));
  }
  const all = await sub.history({ limit: 10 });
  const latest = await sub.history({ limit: 1, reverse: true });
  return {
    data: all.publications.map((pub) => unpayload(pub.data)),
    offsets: all.publications.map((pub) => pub.offset),
    offset: all.offset,
    epoch: all.epoch,
    latest: latest.publications.map((pub) => unpayload(pub.data)),
  };
});
