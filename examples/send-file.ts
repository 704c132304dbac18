/**
 * Send a file from one peer to another with sendFiles / receiveFiles: written under a temporary
 * name, checked against the sender's SHA-256, then renamed into place; an interrupted transfer
 * resumes where it stopped when sent again. Run: `node dist/examples/send-file.js`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import {
  collectEntries, createPeer, generateIdentity, receiveFiles, sendFiles, type Connection, type TransferSummary,
} from 'natpunch';
import { startRendezvous } from './rendezvous.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

// A scratch folder with a 4 MiB file to send and an empty folder to receive into.
const scratch = await mkdtemp(join(tmpdir(), 'natpunch-example-'));
const source = join(scratch, 'report.bin');
const inbox = join(scratch, 'inbox');
await writeFile(source, randomBytes(4 << 20));
await mkdir(inbox);

const rendezvous = await startRendezvous();
const options = { server: rendezvous.url, bindAddress: '127.0.0.1', ipv6: false };
const sender = await createPeer({ ...options, identity: generateIdentity() });
const receiver = await createPeer({ ...options, identity: generateIdentity() });
try {
  // The receiver takes one transfer into `inbox`. receiveFiles works over any Duplex; here, the
  // incoming connection. It resolves once every file is verified and in place.
  const received = new Promise<TransferSummary>((resolve, reject) => {
    receiver.once('connection', (connection: Connection) => {
      receiveFiles(connection, { directory: inbox })
        .then(async (summary) => { await finished(connection); return summary; })
        .then(resolve, reject);
    });
    receiver.on('connection-error', reject);
  });

  // The sender lists what to send (files, or directories with all in them) and offers it.
  const { entries } = await collectEntries([source]);
  const connection = await sender.connect(receiver.peerId);
  let lastPercent = -1;
  const sent = await sendFiles(connection, entries, {
    onProgress: ({ bytes, total }) => {
      const percent = Math.floor((100 * bytes) / total / 25) * 25; // print at 0, 25, 50, 75, 100 %
      if (percent !== lastPercent) console.log(`sender: ${percent}% (${bytes} of ${total} bytes)`);
      lastPercent = percent;
    },
  });
  await finished(connection); // both sides ended, our last bytes acknowledged
  const summary = await received;
  console.log(`sender: sent ${sent.files} file, ${sent.bytes} bytes, over ${connection.path}`);
  console.log(`receiver: got ${summary.paths.join(', ')} (${summary.bytes} bytes)`);

  const same = sha256(await readFile(join(inbox, 'report.bin'))) === sha256(await readFile(source));
  console.log(`receiver: inbox/report.bin ${same ? 'matches' : 'DIFFERS FROM'} the original`);
  if (!same) process.exitCode = 1;
} finally {
  await sender.close();
  await receiver.close();
  await rendezvous.stop();
  await rm(scratch, { recursive: true, force: true });
}
