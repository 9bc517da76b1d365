// Connect with an HS256 connection JWT.
import { connected, run } from './sdk.mjs';

run(async () => {
  const client = await connected({ sub: '42' });
  return { state: client.state };
});
